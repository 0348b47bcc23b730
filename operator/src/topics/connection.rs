//! How to reach a pipeline's brokers: bootstrap servers plus optional credentials from the
//! Secret named in the spec (keys `username`, `password`, `ca.crt`, the layout Strimzi's
//! `KafkaUser` and cluster CA Secrets use).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use rdkafka::ClientConfig;

use super::TopicError;

/// SASL mechanism used when the Secret holds a username and password.
pub const DEFAULT_SASL_MECHANISM: &str = "SCRAM-SHA-512";

#[derive(Clone, PartialEq, Eq)]
pub struct KafkaAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM of the CA that signed the brokers' certificates; its presence turns TLS on.
    pub ca_pem: Option<String>,
    pub sasl_mechanism: String,
    /// `security.protocol` when the spec names it; otherwise implied by what the Secret holds.
    pub security_protocol: Option<String>,
}

// Hand-written so a password never reaches a log line.
impl std::fmt::Debug for KafkaAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("security_protocol", &self.security_protocol)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConnection {
    pub bootstrap_servers: String,
    pub auth: Option<KafkaAuth>,
}

impl KafkaConnection {
    pub fn plaintext(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConnection { bootstrap_servers: bootstrap_servers.into(), auth: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("Secret {0} has none of the keys username/password/ca.crt")]
    Empty(String),
    #[error("Secret {secret} key {key} is not UTF-8")]
    NotUtf8 { secret: String, key: String },
    #[error("Secret {0} has a username without a password")]
    MissingPassword(String),
}

impl KafkaAuth {
    /// Reads `username`, `password` and `ca.crt` from a Secret's data.
    pub fn from_secret(secret: &Secret, sasl_mechanism: Option<&str>) -> Result<KafkaAuth, SecretError> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let empty = BTreeMap::new();
        let data = secret.data.as_ref().unwrap_or(&empty);
        let read = |key: &str| -> Result<Option<String>, SecretError> {
            match data.get(key) {
                None => Ok(None),
                Some(bytes) => String::from_utf8(bytes.0.clone())
                    .map(Some)
                    .map_err(|_| SecretError::NotUtf8 { secret: name.clone(), key: key.into() }),
            }
        };
        let auth = KafkaAuth {
            username: read("username")?,
            password: read("password")?,
            ca_pem: read("ca.crt")?,
            sasl_mechanism: sasl_mechanism.unwrap_or(DEFAULT_SASL_MECHANISM).to_string(),
            security_protocol: None,
        };
        if auth.username.is_none() && auth.password.is_none() && auth.ca_pem.is_none() {
            return Err(SecretError::Empty(name));
        }
        if auth.username.is_some() && auth.password.is_none() {
            return Err(SecretError::MissingPassword(name));
        }
        Ok(auth)
    }

    /// `security.protocol`: the spec's when set, otherwise implied by what the Secret holds.
    pub fn security_protocol(&self) -> &str {
        if let Some(protocol) = &self.security_protocol {
            return protocol;
        }
        match (self.username.is_some(), self.ca_pem.is_some()) {
            (true, true) => "SASL_SSL",
            (true, false) => "SASL_PLAINTEXT",
            (false, true) => "SSL",
            (false, false) => "PLAINTEXT",
        }
    }
}

/// librdkafka settings for an admin client, plus the temporary CA file they point at (librdkafka
/// reads `ssl.ca.location` from disk). Keep the returned file alive as long as the client.
pub fn client_config(
    connection: &KafkaConnection,
) -> Result<(ClientConfig, Option<tempfile::NamedTempFile>), TopicError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &connection.bootstrap_servers)
        .set("client.id", "spikewatch-operator")
        // Fail an unreachable broker within a reconcile instead of retrying for minutes.
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "2000");
    let mut ca_file = None;
    if let Some(auth) = &connection.auth {
        config.set("security.protocol", auth.security_protocol());
        if let (Some(user), Some(password)) = (&auth.username, &auth.password) {
            config
                .set("sasl.mechanism", &auth.sasl_mechanism)
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        if let Some(pem) = &auth.ca_pem {
            let file = write_ca(pem)?;
            config.set("ssl.ca.location", file.path().to_string_lossy().as_ref());
            ca_file = Some(file);
        }
    }
    Ok((config, ca_file))
}

fn write_ca(pem: &str) -> Result<tempfile::NamedTempFile, TopicError> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("kafka-ca-")
        .suffix(".crt")
        .tempfile()
        .map_err(|e| TopicError::Config(format!("cannot create a temporary CA file: {e}")))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| TopicError::Config(format!("cannot write the CA file: {e}")))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some("kafka-user".into());
        secret.data = Some(pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect());
        secret
    }

    #[test]
    fn secret_with_user_and_ca_means_sasl_over_tls() {
        let auth =
            KafkaAuth::from_secret(&secret(&[("username", "u"), ("password", "p"), ("ca.crt", "PEM")]), None).unwrap();
        assert_eq!(auth.security_protocol(), "SASL_SSL");
        assert_eq!(auth.sasl_mechanism, DEFAULT_SASL_MECHANISM);
        let (config, ca) =
            client_config(&KafkaConnection { bootstrap_servers: "b:9093".into(), auth: Some(auth) }).unwrap();
        let ca = ca.expect("CA written to a file");
        assert_eq!(std::fs::read_to_string(ca.path()).unwrap(), "PEM");
        assert_eq!(config.get("ssl.ca.location"), Some(ca.path().to_string_lossy().as_ref()));
        assert_eq!(config.get("sasl.username"), Some("u"));
    }

    #[test]
    fn username_without_password_is_refused() {
        let err = KafkaAuth::from_secret(&secret(&[("username", "u")]), None).unwrap_err();
        assert_eq!(err, SecretError::MissingPassword("kafka-user".into()));
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(KafkaAuth::from_secret(&secret(&[]), None), Err(SecretError::Empty(_))));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let auth = KafkaAuth::from_secret(&secret(&[("username", "u"), ("password", "hunter2")]), None).unwrap();
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
