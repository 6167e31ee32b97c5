//! Where a key is in a tenant file, for reasons found after parsing (a missing plugin, an
//! unset variable), so they too read `file:line: reason`.

use toml::de::{DeTable, DeValue};

/// The 1-based line of the value at `keys` (`["plugins", "api", "source"]`); the line of
/// the deepest key found when the rest is absent; `None` when the text does not parse.
pub fn line_of_key(text: &str, keys: &[&str]) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut found = None;
    for key in keys {
        let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref() == key) else {
            break;
        };
        found = Some(value.span().start);
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    found.map(|at| line_of(text, at))
}

/// The 1-based line of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_tables_and_inline_tables() {
        let text = "[limits]\nmemory_mb = 32\n\n[plugins.api]\nsource = \"api.wasm\"\n\
                    secrets = { token = { env = \"T\" } }\n[jwt]\njwks_file = \"k.json\"\n";
        assert_eq!(line_of_key(text, &["plugins", "api", "source"]), Some(5));
        assert_eq!(
            line_of_key(text, &["plugins", "api", "secrets", "token"]),
            Some(6)
        );
        assert_eq!(line_of_key(text, &["jwt", "jwks_file"]), Some(8));
        assert_eq!(line_of_key(text, &["plugins", "api", "nothing"]), Some(4));
        assert_eq!(line_of_key(text, &["nothing"]), None);
        assert_eq!(line_of_key("[broken", &["jwt"]), None);
    }
}
