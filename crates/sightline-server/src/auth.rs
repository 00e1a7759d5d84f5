//! Secrets: the API token (read APIs) and the ingest key (ingest beyond
//! loopback). Either comes from the config or is generated once into the data
//! dir (mode 0600) and reused.

use sightline_store::files;
use std::path::Path;

/// Loads `file` from the data dir or writes a new random secret into it.
pub fn load_or_create(data_dir: &Path, file: &str, prefix: &str) -> std::io::Result<String> {
    let path = data_dir.join(file);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let secret = format!("{prefix}{}", hex::encode(rand::random::<[u8; 20]>()));
    std::fs::create_dir_all(data_dir)?;
    let tmp = data_dir.join(format!("{file}.tmp"));
    std::fs::write(&tmp, format!("{secret}\n"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(secret)
}

pub fn api_token(data_dir: &Path) -> std::io::Result<String> {
    load_or_create(data_dir, files::API_TOKEN_FILE, "slt_")
}

pub fn ingest_key(data_dir: &Path) -> std::io::Result<String> {
    load_or_create(data_dir, files::INGEST_KEY_FILE, "sli_")
}

/// Compares secrets in time independent of where they differ.
pub fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(value: Option<&str>) -> Option<&str> {
    let v = value?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}
