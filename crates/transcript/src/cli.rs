//! Checks of command-line values that clap's types alone do not make. A bad
//! value becomes a [`Failure`] naming the flag, so the lesson exits with
//! `lesson-NN: --idle: 0 is not a positive number of seconds` and status 1
//! instead of running with a value that makes no sense.

use std::time::Duration;

use crate::Failure;

/// A flag given in seconds (`--idle 0.5`), refused when it is not a
/// positive, finite number: zero, negative, NaN and infinite values are not
/// durations a socket option or a deadline can use.
pub fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value).ok().filter(|d| !d.is_zero()).ok_or(
        Failure::new(
            flag,
            format!("{value} is not a positive number of seconds"),
        ),
    )
}

/// A count that must be at least 1 (`--workers`, `--max-conns`): a server
/// with no workers or no room for a connection would serve nobody.
pub fn at_least_one(flag: &str, value: usize) -> Result<usize, Failure> {
    if value == 0 {
        Err(Failure::new(flag, "must be at least 1"))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accepts_positive_finite_values() {
        assert_eq!(seconds("--idle", 1.0).unwrap(), Duration::from_secs(1));
        assert_eq!(
            seconds("--idle", 0.25).unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn seconds_refuses_zero_negative_and_non_finite_values_naming_the_flag() {
        for (value, shown) in [
            (0.0, "0"),
            (-1.0, "-1"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
        ] {
            let failure = seconds("--idle", value).unwrap_err();
            assert_eq!(
                failure.to_string(),
                format!("--idle: {shown} is not a positive number of seconds")
            );
        }
    }

    #[test]
    fn at_least_one_refuses_zero_naming_the_flag() {
        assert_eq!(at_least_one("--workers", 3).unwrap(), 3);
        assert_eq!(
            at_least_one("--workers", 0).unwrap_err().to_string(),
            "--workers: must be at least 1"
        );
    }
}
