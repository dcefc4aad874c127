//! The identity transform: every batch comes back unchanged. It measures what running a plugin
//! costs (IPC encoding both ways, copies across the component boundary) and nothing else.

use toss_etl_sdk::{Config, Error, RecordBatch, Transform};

/// Returns its input. Takes no config keys.
pub struct Identity;

impl Transform for Identity {
    fn new(config: Config) -> Result<Self, Error> {
        config.deny_unknown_keys(&[])?;
        Ok(Identity)
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        Ok(batch)
    }
}

toss_etl_sdk::export_transform!(Identity);

#[cfg(test)]
mod tests {
    use toss_etl_sdk::toss::{self, Row};
    use toss_etl_sdk::{Instance, ipc};

    use super::*;

    #[test]
    fn returns_the_batch_unchanged() {
        let mut instance = Instance::<Identity>::new();
        instance.init("{}").unwrap();
        let input = toss::batch(&[Row::auth("a", 1000), Row::rev("b", 500).buyerid(None)]);
        let output = instance
            .transform_ipc(ipc::encode(&input).unwrap())
            .unwrap();
        assert_eq!(ipc::decode(&output).unwrap(), input);

        let probe = ipc::encode(&ipc::empty_batch(toss::schema())).unwrap();
        let output = ipc::decode(&instance.transform_ipc(probe).unwrap()).unwrap();
        assert_eq!(output.schema(), toss::schema());
    }

    #[test]
    fn refuses_config_keys() {
        let err = Identity::new(Config::from_json(r#"{"x": 1}"#).unwrap())
            .err()
            .unwrap();
        assert_eq!(err.kind(), "config");
        assert!(err.message().contains('x'));
    }
}
