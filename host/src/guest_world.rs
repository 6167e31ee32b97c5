//! What a plugin built from another language exports (`orquesta build`, for Python and
//! JavaScript alike): the trigger kinds a handler may answer and the WIT world their
//! tools build against.

/// The trigger kinds a plugin may answer, as its registrations name them.
pub const KINDS: [&str; 6] = ["http", "queue", "topic", "bus", "schedule", "task"];

/// The kinds `--trigger` names, each once, in order; `Err` names one that is no kind.
pub fn requested_kinds(names: &[String]) -> Result<Vec<&'static str>, String> {
    let mut kinds = Vec::new();
    for name in names {
        let kind = KINDS.into_iter().find(|k| k == name).ok_or_else(|| {
            format!(
                "--trigger {name}: not a trigger kind ({})",
                KINDS.join(", ")
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// World `name`: every capability and the handler interface of each kind in `kinds`.
pub fn world(name: &str, kinds: &[&str]) -> String {
    let mut wit =
        format!("// Written by `orquesta build`.\nworld {name} {{\n    include capabilities;\n");
    for kind in kinds {
        wit.push_str(&format!("    export {kind}-handler;\n"));
    }
    wit.push_str("}\n");
    wit
}

/// A hash of everything a build embeds: the contract and the SDK's files.
pub fn fingerprint(contract: &str, sdk: &[(&str, &str)]) -> String {
    let mut all = Vec::new();
    all.extend_from_slice(contract.as_bytes());
    for (name, text) in sdk {
        all.extend_from_slice(name.as_bytes());
        all.extend_from_slice(text.as_bytes());
    }
    crate::engine::content_hash(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_kinds_each_once_in_order() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            requested_kinds(&names(&["queue", "http", "queue"])),
            Ok(vec!["queue", "http"])
        );
        let e = requested_kinds(&names(&["http", "mqtt"])).unwrap_err();
        assert!(e.contains("--trigger mqtt: not a trigger kind"), "{e}");
    }
}
