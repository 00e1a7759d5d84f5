//! A full disk: ingest answers 507 (or 503), readiness degrades, nothing
//! acknowledged is lost or corrupted, and ingest resumes when space returns.
//! Uses a real 24 MiB tmpfs, so it needs root (CI runs as root).

use crate::support::*;
use std::io::Write;
use std::process::Command;

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn fill(path: &std::path::Path) -> std::fs::File {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut small = vec![0u8; 512];
    while f.write_all(&small).is_ok() {}
    small.truncate(1);
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    f
}

#[test]
fn disk_full_is_reported_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(
        st.success(),
        "mounting a tmpfs needs root; run the suite as root (CI does)"
    );
    let _guard = Tmpfs(mnt.clone());
    let data = mnt.join("data");
    let cfg = "[storage]\nmin_free_disk_bytes = 2097152\n";
    let s = Server::start(&data, cfg);
    // Padding that does not compress, so the WAL really fills the disk.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        (0..25)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                format!("{:08x}", seed as u32)
            })
            .collect::<String>()
    };
    let mut line = |id: &str| {
        format!(
            "{{\"event\":\"e\",\"request_id\":\"{id}\",\"pad\":\"{}\"}}\n",
            noise()
        )
    };
    let r = s.ndjson("disk", line("before").as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get_noauth("/health/ready").status, 200);

    let filler_path = mnt.join("filler");
    let filler = fill(&filler_path);
    // Every attempt either fails with 507/503 or, if a page was still free, succeeds.
    let mut saw_full = false;
    for i in 0..50 {
        let id = format!("full-{i}");
        let body: String = (0..200).map(|_| line(&id)).collect();
        let r = s.ndjson("disk", body.as_bytes());
        match r.status {
            507 | 503 => {
                saw_full = true;
                assert!(r.header("retry-after").is_some());
                break;
            }
            200 => continue,
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!(saw_full, "a full disk must refuse ingest");
    let ready = s.get_noauth("/health/ready");
    assert_eq!(ready.status, 503, "{}", ready.body);
    let j = ready.json();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["checks"]["disk_space"]["status"], "failing");

    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    let r = s.ndjson("disk", line("after").as_bytes());
    assert_eq!(
        r.status, 200,
        "ingest resumes when space returns: {}",
        r.body
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.get_noauth("/health/ready").status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "readiness recovers: {}",
            s.get_noauth("/health/ready").body
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for id in ["before", "after"] {
        assert_eq!(s.logs(&format!("request_id={id}")).len(), 1, "{id}");
    }
    // Acknowledged rows survive a crash and every part still opens.
    let count = |s: &Server, id: &str| s.logs(&format!("request_id={id}&limit=1000")).len();
    let acked: Vec<String> = (0..50)
        .map(|i| format!("full-{i}"))
        .filter(|id| count(&s, id) > 0)
        .collect();
    for id in &acked {
        assert_eq!(
            count(&s, id),
            200,
            "a batch is stored whole or not at all: {id}"
        );
    }
    let mut s = s;
    s.kill9();
    let s = Server::start(&data, cfg);
    for id in &acked {
        assert_eq!(count(&s, id), 200, "{id}");
    }
    for id in ["before", "after"] {
        assert_eq!(count(&s, id), 1, "{id}");
    }
}
