//! `scripts/test`, the README's test command, on machines made up for it: a `PATH` of a few
//! programs and an empty root for the tests' fixed paths (`PANE_TEST_ROOT`) stand for a fresh
//! Debian machine with only Rust; stubs stand for what is installed, and for `apt-get`,
//! `sudo`, the MCP venv's `pip` and `cargo`, which record how they were called. Nothing is
//! installed for real.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A made-up machine: `bin` (its whole `PATH`), `root` (where `/usr/bin/chromium` and the
/// others are looked for), `home`, and `log`, where the stubs write their arguments.
struct Machine {
    tmp: tempfile::TempDir,
}

impl Machine {
    /// Only bash, dirname, env and cargo (a stub): Rust, and nothing the tests need.
    fn fresh() -> Machine {
        let m = Machine {
            tmp: tempfile::tempdir().unwrap(),
        };
        for dir in ["bin", "root", "home"] {
            std::fs::create_dir_all(m.tmp.path().join(dir)).unwrap();
        }
        for tool in ["bash", "dirname", "env"] {
            let found = which(tool);
            std::os::unix::fs::symlink(found, m.bin().join(tool)).unwrap();
        }
        m.stub(
            "bin/cargo",
            "echo \"cargo $* PANE_MCP_PYTHON=$PANE_MCP_PYTHON\" >> LOG",
        );
        m.stub("bin/id", "echo 0");
        m
    }

    fn bin(&self) -> PathBuf {
        self.tmp.path().join("bin")
    }

    fn venv(&self) -> PathBuf {
        self.tmp.path().join("home/.cache/pane-agent/mcp-venv")
    }

    /// An executable shell script at `path` (under the machine) that runs `body`; `LOG` in
    /// it is the machine's log.
    fn stub(&self, path: &str, body: &str) {
        let file = self.tmp.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let log = self.tmp.path().join("log");
        let script = format!(
            "#!/bin/sh\n{}\n",
            body.replace("LOG", &log.display().to_string())
        );
        std::fs::write(&file, script).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Everything the tests need, there: the packages' programs, and the pinned MCP SDK's venv.
    fn equipped() -> Machine {
        let m = Machine::fresh();
        for path in [
            "bin/python3",
            "bin/openssl",
            "root/usr/bin/chromium",
            "root/usr/sbin/dovecot",
            "root/usr/bin/systemd-analyze",
        ] {
            m.stub(path, "exit 0");
        }
        m.stub("home/.cache/pane-agent/mcp-venv/bin/python", "exit 0");
        m
    }

    fn run(&self, args: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test");
        Command::new(self.bin().join("bash"))
            .arg(script)
            .args(args)
            .env_clear()
            .env("PATH", self.bin())
            .env("HOME", self.tmp.path().join("home"))
            .env("PANE_TEST_ROOT", self.tmp.path().join("root"))
            .output()
            .unwrap()
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.tmp.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn on_a_fresh_machine_it_says_what_it_would_install_and_why() {
    let m = Machine::fresh();
    let out = m.run(&["--check"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for (package, why) in [
        ("python3", "signature vectors"),
        ("dovecot-imapd", "IMAP server"),
        ("openssl", "test CA"),
        ("chromium", "headless Chromium"),
        ("systemd", "systemd-analyze"),
        ("python3-venv", "venv"),
    ] {
        assert!(
            said.lines()
                .any(|l| l.trim_start().starts_with(package) && l.contains(why)),
            "{package}: {said}"
        );
    }
    assert!(said.contains("mcp==2.3.0 from PyPI"), "{said}");
    assert!(
        said.contains(
            "would run: apt-get update && apt-get install -y --no-install-recommends python3 dovecot-imapd openssl chromium systemd python3-venv"
        ),
        "{said}"
    );
    assert!(m.log().is_empty(), "--check ran something: {:?}", m.log());
}

#[test]
fn with_everything_there_it_installs_nothing_and_runs_every_test() {
    let m = Machine::equipped();
    let out = m.run(&["--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("everything the tests need is here"));

    let out = m.run(&["--", "--test", "demo"]);
    assert!(out.status.success(), "{}", text(&out));
    let python = m.venv().join("bin/python");
    assert_eq!(
        m.log(),
        [format!(
            "cargo test --locked --test demo PANE_MCP_PYTHON={}",
            python.display()
        )]
    );
}

#[test]
fn as_a_user_it_installs_through_sudo_then_makes_the_venv_then_tests() {
    let m = Machine::fresh();
    m.stub("bin/id", "echo 1000");
    m.stub("bin/sudo", "echo \"sudo $*\" >> LOG; exec \"$@\"");
    m.stub("bin/apt-get", "echo \"apt-get $*\" >> LOG");
    // python3 is there (and makes venvs); the rest is not.
    m.stub(
        "bin/python3",
        "if [ \"$1\" = -m ] && [ \"$2\" = venv ]; then\n  /bin/mkdir -p \"$3/bin\"\n  printf '#!/bin/sh\\necho \"pip $*\" >> LOG\\n' > \"$3/bin/pip\"\n  /bin/chmod +x \"$3/bin/pip\"\n  echo \"python3 -m venv $3\" >> LOG\nfi\nexit 0",
    );
    let out = m.run(&[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("installing them now: sudo apt-get install"),
        "{said}"
    );
    let venv = m.venv();
    let log = m.log();
    let want = [
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq".to_string(),
        "apt-get update -qq".to_string(),
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dovecot-imapd openssl chromium systemd".to_string(),
        "apt-get install -y -qq --no-install-recommends dovecot-imapd openssl chromium systemd".to_string(),
        format!("python3 -m venv {}", venv.display()),
        "pip install -q --disable-pip-version-check mcp==2.3.0".to_string(),
        format!(
            "cargo test --locked PANE_MCP_PYTHON={}",
            venv.join("bin/python").display()
        ),
    ];
    assert_eq!(log, want, "{said}");
}

#[test]
fn as_a_user_without_sudo_it_says_what_to_install_and_stops() {
    let m = Machine::fresh();
    m.stub("bin/id", "echo 1000");
    let out = m.run(&[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("needs root"), "{said}");
    assert!(
        said.contains("apt-get install -y --no-install-recommends python3 dovecot-imapd"),
        "{said}"
    );
    assert!(m.log().is_empty(), "{:?}", m.log());
}
