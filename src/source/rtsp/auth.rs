//! Answering the camera's authentication challenge in the camera link. Digest hashes cover
//! the request URI, which the link rewrites, so retina (which only ever sees the link's own
//! address) gets no credentials and the link signs what it sends itself.

use http_auth::{PasswordClient, PasswordParams};

use super::framing::Message;

/// Credentials from the camera URL, and the camera's challenge once it has sent one.
pub struct Signer {
    username: String,
    password: String,
    client: Option<PasswordClient>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("challenged", &self.client.is_some())
            .finish()
    }
}

impl Signer {
    pub fn new(username: String, password: String) -> Self {
        Signer {
            username,
            password,
            client: None,
        }
    }

    /// Takes the challenge(s) of a 401 answer (Digest preferred over Basic).
    pub fn challenge(&mut self, response: &Message) -> Result<(), String> {
        let mut builder = PasswordClient::builder();
        let mut any = false;
        for v in response.headers_named("WWW-Authenticate") {
            builder = builder.challenges(v);
            any = true;
        }
        if !any {
            return Err("a 401 answer without a WWW-Authenticate challenge".into());
        }
        self.client = Some(builder.build()?);
        Ok(())
    }

    /// The `Authorization` value for a request, once the camera has challenged.
    pub fn sign(&mut self, method: &str, uri: &str) -> Option<Result<String, String>> {
        let client = self.client.as_mut()?;
        Some(client.respond(&PasswordParams {
            username: &self.username,
            password: &self.password,
            uri,
            method,
            body: None,
        }))
    }
}
