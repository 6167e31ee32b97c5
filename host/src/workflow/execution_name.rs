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

/// Why `name` is not a valid execution name, if it is not.
pub fn check(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_CHARS {
        return Err(format!(
            "an execution name is 1-{MAX_CHARS} characters, got {chars}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || FORBIDDEN.contains(c))
    {
        return Err(format!(
            "an execution name cannot contain {c:?}: no whitespace, control characters or any of < > {{ }} [ ] ? * \" # % \\ ^ | ~ ` $ & , ; : /"
        ));
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
        for bad in [
            "",
            "../..",
            "a b",
            "tab\there",
            "new\nline",
            "nul\0",
            "del\u{7f}",
            "c1\u{85}",
            "a/b",
            "x:y",
            "<script>",
            "50%",
            "a,b",
            &"x".repeat(81),
            &"x".repeat(100_000),
        ] {
            let err = check(bad).expect_err(bad);
            assert!(err.contains("execution name"), "{err}");
        }
    }
}
