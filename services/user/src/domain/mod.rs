//! Validated values of the user service. Each newtype has a private field and
//! a `parse` constructor, so raw request strings never reach the core.

mod email;
mod password;
mod user_name;

pub use email::{EmailAddress, InvalidEmail};
pub use password::{InvalidPassword, Password};
pub use user_name::{InvalidUserName, UserName};
