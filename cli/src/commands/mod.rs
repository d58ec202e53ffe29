//! One module per subcommand.

pub mod partition;
pub mod provision;
pub mod seed;
pub mod tail;
