//! One module per subcommand.

pub mod bench;
pub mod eval;
pub mod load;
pub mod partition;
pub mod provision;
pub mod seed;
mod status;
pub mod tail;
pub mod up;
