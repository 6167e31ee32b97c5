//! Execution names, as Step Functions allows them: 1-80 characters, none of them
//! whitespace, a control character or one of `< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /`.
//! A name is given by whoever starts an execution (the admin API, a plugin) and is shown
//! back in listings and in `$$.Execution.Name`.

/// The longest name, in characters.
pub const MAX_CHARS: usize = 80;

const FORBIDDEN: &[char] = &[
    '<', '>', '{', '}', '[', ']', '?', '*', '"', '#', '%', '\\', '^', '|', '~', '`', '$', '&', ',',
    ';', ':', '/',
];

/// Why a name is not a valid execution name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Its length in characters.
    #[error("an execution name is 1-{MAX_CHARS} characters, got {0}")]
    Length(usize),
    #[error(
        "an execution name cannot contain {0:?}: no whitespace, control characters or any of < > {{ }} [ ] ? * \" # % \\ ^ | ~ ` $ & , ; : /"
    )]
    Forbidden(char),
}

/// Why `name` is not a valid execution name, if it is not.
pub fn check(name: &str) -> Result<(), NameError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_CHARS {
        return Err(NameError::Length(chars));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || FORBIDDEN.contains(c))
    {
        return Err(NameError::Forbidden(c));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_held_to_the_clouds_rules() {
        for ok in [
            "order-42",
            "a",
            "Pedido_2026.12.05",
            "ñandú",
            &"x".repeat(80),
            "..",
        ] {
            assert!(check(ok).is_ok(), "{ok:?} refused");
        }
        for (bad, why) in [
            ("", NameError::Length(0)),
            ("../..", NameError::Forbidden('/')),
            ("a b", NameError::Forbidden(' ')),
            ("tab\there", NameError::Forbidden('\t')),
            ("new\nline", NameError::Forbidden('\n')),
            ("nul\0", NameError::Forbidden('\0')),
            ("del\u{7f}", NameError::Forbidden('\u{7f}')),
            ("c1\u{85}", NameError::Forbidden('\u{85}')),
            ("a/b", NameError::Forbidden('/')),
            ("x:y", NameError::Forbidden(':')),
            ("<script>", NameError::Forbidden('<')),
            ("50%", NameError::Forbidden('%')),
            ("a,b", NameError::Forbidden(',')),
            ("x".repeat(81).as_str(), NameError::Length(81)),
            ("x".repeat(100_000).as_str(), NameError::Length(100_000)),
        ] {
            assert_eq!(check(bad), Err(why), "{bad:.20}");
        }
        // The text the admin API and a plugin's start see (e2e tests look for it).
        assert_eq!(
            NameError::Forbidden('/').to_string(),
            r#"an execution name cannot contain '/': no whitespace, control characters or any of < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /"#
        );
    }
}
