//! The user service's request bodies: `POST /users` and `POST /sessions`.

use crate::Outcome;
use crate::invariants::{assert_field_problem, json_body};
use shopmesh_user::domain::{EmailAddress, Password, UserName};
use shopmesh_user::routes::{Login, LoginRequest, RegisterRequest, Registration};

/// `POST /users {email, name, password}`.
pub fn user_register(data: &[u8]) -> Outcome {
    let Some(request) = json_body::<RegisterRequest>(data) else {
        return Outcome::Refused;
    };
    let validated = request.validate();
    match &validated {
        Ok(Registration {
            email,
            name,
            password,
        }) => {
            assert_email_is_normal(email);
            assert_eq!(UserName::parse(name.as_str()).as_ref(), Ok(name));
            assert!(
                Password::parse(password.expose().to_owned()).is_ok(),
                "an accepted password does not re-validate"
            );
        }
        Err(error) => assert_field_problem(&error.problem(), &["email", "name", "password"]),
    }
    Outcome::of(&validated)
}

/// `POST /sessions {email, password}`.
pub fn user_login(data: &[u8]) -> Outcome {
    let Some(request) = json_body::<LoginRequest>(data) else {
        return Outcome::Refused;
    };
    let validated = request.validate();
    match &validated {
        Ok(Login { email, .. }) => assert_email_is_normal(email),
        Err(error) => assert_field_problem(&error.problem(), &["email"]),
    }
    Outcome::of(&validated)
}

/// The normal form is the account's unique key: normalising it again must
/// not change it, or one address could open two accounts.
fn assert_email_is_normal(email: &EmailAddress) {
    assert_eq!(
        EmailAddress::parse(email.as_str()).as_ref(),
        Ok(email),
        "a normalised address normalises to something else"
    );
}
