//! Writes the repository's files generated from the operator's code
//! (`spikewatch_operator::generated`): the CRD, the chart's copy of it, and the Compose stack's
//! rule file and dashboard. Run by `scripts/generate`, which also regenerates the other
//! generated files; the repository's root is the one this crate lives in.

use std::path::Path;
use std::process::ExitCode;

use spikewatch_operator::generated::generated_files;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = match generated_files(&root) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("generate: {e}");
            return ExitCode::FAILURE;
        }
    };
    for file in files {
        let path = root.join(file.path);
        if let Err(e) = std::fs::write(&path, file.content) {
            eprintln!("generate: cannot write {}: {e}", file.path);
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
