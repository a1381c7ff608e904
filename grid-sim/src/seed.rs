//! The seed of a simulated run, and how to replay one.

/// The environment variable that replays a run: `GRID_SIM_SEED=<seed>`.
pub const SEED_VAR: &str = "GRID_SIM_SEED";

/// The seed from `GRID_SIM_SEED` if it is set (decimal or `0x` hex), else
/// `default`. A test that takes its seed from here replays a failure with
/// the seed it printed.
pub fn seed_from_env(default: u64) -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(text) => {
            parse_seed(&text).unwrap_or_else(|| panic!("{SEED_VAR}={text:?} is not a number"))
        }
        Err(_) => default,
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seed;

    #[test]
    fn seeds_are_decimal_or_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a "), Some(42));
        assert_eq!(parse_seed("forty-two"), None);
    }
}
