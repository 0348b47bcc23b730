//! The bearer token of the API's and predictor's admin endpoints: one Secret per pipeline,
//! created by the operator with a random token the first time and never rewritten (the pods
//! read it at start), owned by the pipeline so it goes away with it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use rand::RngCore;

use super::Context;
use super::apply::FIELD_MANAGER;
use super::error::{Error, Result};
use crate::crd::VolatilityPipeline;
use crate::desired::{ADMIN_TOKEN_KEY, PIPELINE_COMPONENT, admin_token_secret_name, child_meta};

/// The admin token Secret of `vp` holding `token`.
pub fn admin_token_secret(vp: &VolatilityPipeline, token: &str) -> Result<Secret> {
    let metadata = child_meta(vp, admin_token_secret_name(vp), PIPELINE_COMPONENT)
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    Ok(Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(ADMIN_TOKEN_KEY.to_string(), ByteString(token.as_bytes().to_vec()))])),
        ..Secret::default()
    })
}

/// 32 random bytes, hex-encoded.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates the Secret unless it exists. Returns whether it was created.
pub async fn ensure(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<bool> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let name = admin_token_secret_name(vp);
    if api.get_opt(&name).await?.is_some() {
        return Ok(false);
    }
    let secret = admin_token_secret(vp, &new_token())?;
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
    match api.create(&params, &secret).await {
        Ok(_) => Ok(true),
        // Created by a concurrent reconcile (or another replica): theirs stands.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The token, for calling the admin endpoints.
pub async fn read(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<String> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let name = admin_token_secret_name(vp);
    let secret = api
        .get_opt(&name)
        .await?
        .ok_or_else(|| Error::MissingSecret(format!("admin token Secret {namespace}/{name} does not exist")))?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(ADMIN_TOKEN_KEY))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::InvalidSpec(format!(
                "admin token Secret {namespace}/{name} has no {ADMIN_TOKEN_KEY:?} key; delete it and the operator creates a new one"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn the_secret_is_owned_by_the_pipeline() {
        let vp = crate::fixtures::pipeline();
        let secret = admin_token_secret(&vp, "t").unwrap();
        assert_eq!(secret.metadata.name.as_deref(), Some("test-admin-token"));
        assert_eq!(secret.metadata.owner_references.unwrap()[0].uid, crate::fixtures::UID);
        assert_eq!(secret.data.unwrap()[ADMIN_TOKEN_KEY].0, b"t");
    }
}
