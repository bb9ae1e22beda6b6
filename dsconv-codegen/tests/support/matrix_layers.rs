//! The layers of the property matrix (`tests/matrix_*.rs`), read from their source: shared
//! by the plan coverage test and the `code_size` example.

/// `(name, args)` of every layer declared in the matrix suites.
pub fn matrix_layers() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests");
    let mut layers = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("matrix_") && name.ends_with(".rs")) {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let line = line.trim();
            let Some((layer, rest)) = line.split_once(": (") else {
                continue;
            };
            if let Some(args) = rest.strip_suffix(");") {
                layers.push((layer.to_string(), args.to_string()));
            }
        }
    }
    layers
}
