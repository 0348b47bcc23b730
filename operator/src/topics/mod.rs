//! Kafka topics of a pipeline: what to change ([`plan`]), how to reach the broker
//! ([`connection`]), and who changes it ([`TopicAdmin`]: the Kafka Admin API in [`kafka`]).
//! With `topicManagement: strimzi` the topics are `KafkaTopic` objects instead ([`strimzi`]).

pub mod admin;
pub mod connection;
pub mod kafka;
pub mod plan;
pub mod strimzi;

pub use admin::{TopicAdmin, TopicError, TopicReport};
pub use connection::{KafkaAuth, KafkaConnection};
pub use kafka::KafkaTopicAdmin;
pub use plan::{ObservedTopic, ShrinkRefused, TopicChange, TopicPlan, TopicSpec, plan};
