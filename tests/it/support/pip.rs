//! Python tools the tests drive (schemathesis, the aws CLI), installed from PyPI at a pinned
//! version into `target/<package>/venv-<version>/` once per machine, with the system's
//! `python3`. Without Python the test fails; it does not skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of `command` from `package==version`, installed if it is not there yet. A venv's
/// scripts name its folder, so it is made in place; a marker says the install finished.
pub fn tool(package: &str, version: &str, command: &str) -> PathBuf {
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/{package}/venv-{version}"));
    let done = venv.join("installed");
    let path = venv.join("bin").join(command);
    if done.exists() {
        return path;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let run = |command: &mut Command, what: &str| {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e} (python3 is needed for this test)"));
        assert!(
            out.status.success(),
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    );
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("{package}=={version}"),
        ]),
        &format!("pip install {package}"),
    );
    std::fs::write(&done, version).expect("mark the install");
    path
}
