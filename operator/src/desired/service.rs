//! One ClusterIP Service per workload: the API on 8000, the stream workloads' metrics on 8001.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::DesiredError;
use super::meta::{child_meta, selector_labels, workload_name};
use crate::crd::{VolatilityPipeline, Workload};

/// The Service in front of `workload`'s pods.
pub fn desired_service(vp: &VolatilityPipeline, workload: Workload) -> Result<Service, DesiredError> {
    Ok(Service {
        metadata: child_meta(vp, workload_name(vp, workload), workload.component())?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(vp, workload.component())),
            ports: Some(vec![ServicePort {
                name: Some(workload.port_name().into()),
                port: workload.port(),
                target_port: Some(IntOrString::String(workload.port_name().into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}
