//! How a failed command reports: one line, each cause once; and the checks of output paths that
//! run before any input is read.

use std::path::Path;

use anyhow::Context;

/// The error and its causes on one line, `context: cause: cause`, leaving out a cause whose text
/// the line already holds (an error that prints its source, as many `thiserror` types do).
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line.replace('\n', " ")
}

/// Fails, before any work, when `path` cannot be written: its directory is missing or not
/// writable, or it is a directory. `flag` names the option in the message.
pub fn check_output(flag: &str, path: &Path) -> anyhow::Result<()> {
    let fail = |why: String| anyhow::anyhow!("{flag} {}: {why}", path.display());
    if path.is_dir() {
        return Err(fail("is a directory".into()));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(fail(format!("no such directory {}", dir.display())));
    }
    // Writing a file there (removed at once) is the only reliable test (permissions, read-only
    // mounts, ACLs).
    tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| fail(format!("cannot write in {}: {}", dir.display(), e.kind())))
        .and_then(|probe| probe.close().with_context(|| format!("{flag} {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_appears_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write {path}: {source}")]
        struct Repeats {
            path: &'static str,
            source: std::io::Error,
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::new(Repeats { path: "/x/t.csv", source: io }).context("writing the table");
        assert_eq!(error_line(&err), "writing the table: cannot write /x/t.csv: No such file or directory");
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&err), "outer: inner");
    }

    #[test]
    fn output_paths_are_checked_without_leaving_anything() {
        let dir = tempfile::tempdir().unwrap();
        check_output("--output", &dir.path().join("t.csv")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe is removed");
        let err = check_output("--output", &dir.path().join("missing/t.csv")).unwrap_err().to_string();
        assert!(err.starts_with("--output ") && err.contains("no such directory"), "{err}");
        let err = check_output("--report", dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }
}
