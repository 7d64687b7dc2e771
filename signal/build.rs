//! Makes the presage and libsignal-service revisions pinned in `Cargo.lock` known to the
//! binary (`PANE_PRESAGE_REV`, `PANE_LIBSIGNAL_SERVICE_REV`): the gateway logs them and
//! reports them to the core, so which Signal client it is never has to be guessed.

fn pinned(lock: &str, package: &str) -> String {
    let mut in_package = false;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            in_package = false;
        } else if line == format!("name = \"{package}\"") {
            in_package = true;
        } else if in_package && line.starts_with("source = ") {
            if let Some((_, rev)) = line.trim_end_matches('"').rsplit_once('#') {
                return rev.to_string();
            }
        }
    }
    "unknown".to_string()
}

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.lock.orig");
    // The end-to-end harness builds a copy whose lock cargo rewrites for its patch of
    // libsignal-service, and keeps signal/'s lock beside it as Cargo.lock.orig.
    let lock = std::fs::read_to_string("Cargo.lock.orig")
        .or_else(|_| std::fs::read_to_string("Cargo.lock"))
        .unwrap_or_default();
    println!(
        "cargo:rustc-env=PANE_PRESAGE_REV={}",
        pinned(&lock, "presage")
    );
    println!(
        "cargo:rustc-env=PANE_LIBSIGNAL_SERVICE_REV={}",
        pinned(&lock, "libsignal-service")
    );
}
