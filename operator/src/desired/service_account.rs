//! The pods' ServiceAccount: an identity of their own, with no API token mounted.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::DesiredError;
use super::meta::{PIPELINE_COMPONENT, child_meta, service_account_name};
use crate::crd::VolatilityPipeline;

/// The ServiceAccount every workload pod runs as.
pub fn desired_service_account(vp: &VolatilityPipeline) -> Result<ServiceAccount, DesiredError> {
    Ok(ServiceAccount {
        metadata: child_meta(vp, service_account_name(vp), PIPELINE_COMPONENT)?,
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    })
}
