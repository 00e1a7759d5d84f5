//! The sample config in the repo parses and equals the defaults.

#[test]
fn sample_config_is_the_defaults() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sightline.toml.example");
    let c = sightline_server::Config::from_file(&p).unwrap();
    assert_eq!(c, sightline_server::Config::default());
}
