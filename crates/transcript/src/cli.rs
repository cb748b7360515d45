//! Checks of command-line values that clap's types alone do not make. A bad
//! value becomes a [`Failure`] naming the flag, so the lesson exits with
//! `lesson-NN: --idle: 0 is not a positive number of seconds` and status 1
//! instead of running with a value that makes no sense.

use std::time::Duration;

use crate::Failure;

/// The shortest duration a flag in seconds takes. `SO_RCVTIMEO` counts in
/// microseconds and reads 0 as "no timeout": anything shorter than this
/// could round down to "wait for ever", the opposite of what was asked.
pub const SHORTEST: Duration = Duration::from_millis(1);

/// The longest: a year. Far longer values overflow when added to a clock
/// reading (`Instant + Duration` panics), and no lesson needs them.
pub const LONGEST: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A flag given in seconds (`--idle 0.5`), refused unless it lies between
/// [`SHORTEST`] and [`LONGEST`]: zero, negative, NaN, infinite, tiny and
/// enormous values are not durations a socket option or a deadline can use.
pub fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| (SHORTEST..=LONGEST).contains(d))
        .ok_or(Failure::new(
            flag,
            format!(
                "{value} is not a number of seconds from {} to {}",
                SHORTEST.as_secs_f64(),
                LONGEST.as_secs()
            ),
        ))
}

/// A count from 1 to `max` (`--workers`, `--max-conns`): a server with no
/// workers or no room for a connection would serve nobody, and one asked
/// for more than `max` would try to allocate it all.
pub fn between_one_and(
    flag: &str,
    value: usize,
    max: usize,
) -> Result<usize, Failure> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Failure::new(flag, format!("must be from 1 to {max}")))
    }
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
            (1e-7, "0.0000001"),
            (1e19, "10000000000000000000"),
        ] {
            let failure = seconds("--idle", value).unwrap_err();
            assert_eq!(
                failure.to_string(),
                format!(
                    "--idle: {shown} is not a number of seconds \
                     from 0.001 to 31536000"
                )
            );
        }
    }

    #[test]
    fn between_one_and_refuses_zero_and_too_many_naming_the_flag() {
        assert_eq!(between_one_and("--workers", 3, 10).unwrap(), 3);
        assert_eq!(
            between_one_and("--workers", 11, 10).unwrap_err().to_string(),
            "--workers: must be from 1 to 10"
        );
        assert!(between_one_and("--workers", 0, 10).is_err());
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
