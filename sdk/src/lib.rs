//! The SDK for writing the engine's transform plugins in Rust.
//!
//! A plugin is a WebAssembly component (`wasm32-wasip2`) that the engine runs on every record
//! batch of a pipeline. With this crate a plugin is a plain Rust type implementing
//! [`Transform`], plus one line, [`export_transform!`], that makes it the component's exports:
//!
//! ```
//! use toss_etl_sdk::arrow::array::RecordBatch;
//! use toss_etl_sdk::{Config, Error, Transform};
//!
//! pub struct Identity;
//!
//! impl Transform for Identity {
//!     fn new(_config: Config) -> Result<Self, Error> {
//!         Ok(Identity)
//!     }
//!
//!     fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error> {
//!         Ok(batch)
//!     }
//! }
//!
//! toss_etl_sdk::export_transform!(Identity);
//! # fn main() {}
//! ```
//!
//! The type stays ordinary Rust: test it natively with `cargo test`, calling `new` and
//! `transform` directly, or through [`Instance`], which runs exactly what the engine's calls
//! run (JSON config in, Arrow IPC bytes in and out). Only the code that [`export_transform!`]
//! expands to is WebAssembly-specific; on other targets it merely checks that the type
//! implements [`Transform`].
//!
//! The contract itself is `wit/transform.wit` (world `toss-etl:transform@1.0.0`): this
//! crate is one way of implementing it.

// No unsafe code in the SDK. The WIT guest bindings that wit-bindgen generates on wasm32
// (`__private::bindings`) do use `unsafe` (canonical-ABI glue over linear memory), but they are
// the expansion of another crate's procedural macro, to which rustc does not apply this lint; so
// `forbid` holds for every line written here, and the wasm32 build checks that it compiles.
#![forbid(unsafe_code)]

pub use arrow;
pub use arrow::array::RecordBatch;
pub use serde_json;

pub mod columns;
mod config;
mod error;
pub mod ipc;
pub mod toss;
pub mod toss_api;

pub use config::Config;
pub use error::Error;

/// A transform plugin: one value per component instance, created from the pipeline's
/// `[transforms.config]` table and then handed every record batch in order.
pub trait Transform: Sized + 'static {
    /// Builds the plugin from the `[transforms.config]` table. Check every key here and return
    /// an [`Error::Config`] naming the key: the engine reports it before any data moves.
    fn new(config: Config) -> Result<Self, Error>;

    /// Transforms one batch. The engine first calls this with a batch of no rows to learn the
    /// output schema; every later output must have exactly that schema (same names, types,
    /// nullability and order). Rows may be added, dropped or reordered.
    fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error>;
}

/// What the component holds between the engine's calls: the plugin once `init` has built it.
///
/// [`export_transform!`] keeps one of these per component instance. It is public so native
/// tests can drive a plugin exactly as the engine does:
///
/// ```
/// # use toss_etl_sdk::{Config, Error, Instance, Transform, RecordBatch};
/// # struct Identity;
/// # impl Transform for Identity {
/// #     fn new(_: Config) -> Result<Self, Error> { Ok(Identity) }
/// #     fn transform(&mut self, b: RecordBatch) -> Result<RecordBatch, Error> { Ok(b) }
/// # }
/// let mut instance = Instance::<Identity>::new();
/// instance.init("{}").unwrap();
/// let input = toss_etl_sdk::toss::batch(&[toss_etl_sdk::toss::Row::auth("oid-1", 1000)]);
/// let output = instance.transform_ipc(toss_etl_sdk::ipc::encode(&input).unwrap()).unwrap();
/// assert_eq!(toss_etl_sdk::ipc::decode(&output).unwrap(), input);
/// ```
pub struct Instance<T> {
    plugin: Option<T>,
}

impl<T> Instance<T> {
    /// An instance before `init`.
    pub const fn new() -> Self {
        Self { plugin: None }
    }

    /// The plugin, once `init` succeeded.
    pub fn plugin(&mut self) -> Option<&mut T> {
        self.plugin.as_mut()
    }
}

impl<T> Default for Instance<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Transform> Instance<T> {
    /// The WIT `init`: parses `config_json` (a JSON object) and builds the plugin with
    /// [`Transform::new`]. A later call replaces the plugin; a failed call leaves none.
    pub fn init(&mut self, config_json: &str) -> Result<(), Error> {
        self.plugin = None;
        let config = Config::from_json(config_json)?;
        self.plugin = Some(T::new(config)?);
        Ok(())
    }

    /// The WIT `transform`: decodes the IPC stream, calls [`Transform::transform`], encodes
    /// the result as an uncompressed IPC stream. Before a successful `init` it is an
    /// [`Error::Other`].
    pub fn transform_ipc(&mut self, batch: Vec<u8>) -> Result<Vec<u8>, Error> {
        let plugin = self.plugin.as_mut().ok_or_else(not_initialised)?;
        let input = ipc::decode_owned(batch)?;
        let output = plugin.transform(input)?;
        ipc::encode(&output)
    }
}

/// The lower level: a plugin that reads and writes the contract's bytes itself (the JSON config
/// text, and Arrow IPC streams), for authors who want control over the IPC encoding. Export it
/// with `export_transform!(raw MyPlugin)`. Everything the contract requires (one uncompressed
/// IPC stream holding exactly one batch, one schema for all outputs) is then up to you; most
/// plugins want [`Transform`].
pub trait RawTransform: Sized + 'static {
    /// The WIT `init`: `config` is the `[transforms.config]` table as JSON text.
    fn init(config: &str) -> Result<Self, Error>;

    /// The WIT `transform`: one Arrow IPC stream in, one out.
    fn transform_ipc(&mut self, batch: Vec<u8>) -> Result<Vec<u8>, Error>;
}

/// What the component holds for a [`RawTransform`]: the plugin once `init` has built it.
pub struct RawInstance<T> {
    plugin: Option<T>,
}

impl<T> RawInstance<T> {
    /// An instance before `init`.
    pub const fn new() -> Self {
        Self { plugin: None }
    }

    /// The plugin, once `init` succeeded.
    pub fn plugin(&mut self) -> Option<&mut T> {
        self.plugin.as_mut()
    }
}

impl<T> Default for RawInstance<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: RawTransform> RawInstance<T> {
    /// The WIT `init`. A later call replaces the plugin; a failed call leaves none.
    pub fn init(&mut self, config_json: &str) -> Result<(), Error> {
        self.plugin = None;
        self.plugin = Some(T::init(config_json)?);
        Ok(())
    }

    /// The WIT `transform`; before a successful `init` it is an [`Error::Other`].
    pub fn transform_ipc(&mut self, batch: Vec<u8>) -> Result<Vec<u8>, Error> {
        let plugin = self.plugin.as_mut().ok_or_else(not_initialised)?;
        plugin.transform_ipc(batch)
    }
}

fn not_initialised() -> Error {
    Error::other("transform was called before init (or after a failed init)")
}

/// Makes a plugin type the component's exports (`init` and `transform` of the WIT world
/// `toss-etl:transform/transform`). Use it once, in the plugin's crate:
///
/// ```
/// # use toss_etl_sdk::{Config, Error, RecordBatch, Transform};
/// # pub struct MyPlugin;
/// # impl Transform for MyPlugin {
/// #     fn new(_: Config) -> Result<Self, Error> { Ok(MyPlugin) }
/// #     fn transform(&mut self, b: RecordBatch) -> Result<RecordBatch, Error> { Ok(b) }
/// # }
/// toss_etl_sdk::export_transform!(MyPlugin);        // a `Transform`
/// // toss_etl_sdk::export_transform!(raw MyRawPlugin); // or a `RawTransform`
/// # fn main() {}
/// ```
///
/// On `wasm32` it keeps one [`Instance`] (or [`RawInstance`]) in a thread-local (a component
/// instance is single threaded) and exports the canonical-ABI functions; on other targets it
/// only checks that the type implements the trait, so the crate still builds and tests
/// natively.
#[macro_export]
macro_rules! export_transform {
    (raw $plugin:ty) => {
        $crate::__sdk_export_glue!($crate::RawInstance<$plugin>, $crate::RawTransform, $plugin);
    };
    ($plugin:ty) => {
        $crate::__sdk_export_glue!($crate::Instance<$plugin>, $crate::Transform, $plugin);
    };
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[macro_export]
macro_rules! __sdk_export_glue {
    ($instance:ty, $trait:path, $plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __SDK_INSTANCE: ::std::cell::RefCell<$instance> =
                    const { ::std::cell::RefCell::new(<$instance>::new()) };
            }

            struct __SdkExports;

            impl $crate::__private::Guest for __SdkExports {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::__private::PluginError> {
                    __SDK_INSTANCE.with(|instance| {
                        instance
                            .borrow_mut()
                            .init(&config)
                            .map_err(::std::convert::Into::into)
                    })
                }

                fn transform(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::__private::PluginError>
                {
                    __SDK_INSTANCE.with(|instance| {
                        instance
                            .borrow_mut()
                            .transform_ipc(batch)
                            .map_err(::std::convert::Into::into)
                    })
                }
            }

            $crate::__private::export! {
                __SdkExports with_types_in $crate::__private::bindings
            }
        };
    };
}

#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __sdk_export_glue {
    ($instance:ty, $trait:path, $plugin:ty) => {
        const _: () = {
            fn __sdk_assert_plugin<T: $trait>() {}
            let _ = __sdk_assert_plugin::<$plugin>;
        };
    };
}

/// The export glue's support code. Not part of the API.
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod __private {
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "transform",
            pub_export_macro: true,
            export_macro_name: "__sdk_export_world",
        });
    }

    pub use bindings::__sdk_export_world as export;
    pub use bindings::Guest;
    pub use bindings::toss_etl::transform::types::PluginError;

    impl From<crate::Error> for PluginError {
        fn from(error: crate::Error) -> Self {
            match error {
                crate::Error::Config(m) => PluginError::Config(m),
                crate::Error::Data(m) => PluginError::Data(m),
                crate::Error::Other(m) => PluginError::Other(m),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AddOne;

    impl Transform for AddOne {
        fn new(config: Config) -> Result<Self, Error> {
            config.deny_unknown_keys(&[])?;
            Ok(AddOne)
        }

        fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error> {
            let amount = columns::int64(&batch, "amount")?;
            let plus: arrow::array::Int64Array = amount.iter().map(|v| v.map(|v| v + 1)).collect();
            columns::replace(&batch, "amount", std::sync::Arc::new(plus), false)
        }
    }

    export_transform!(AddOne);

    struct Echo(String);

    impl RawTransform for Echo {
        fn init(config: &str) -> Result<Self, Error> {
            Ok(Echo(config.to_string()))
        }

        fn transform_ipc(&mut self, batch: Vec<u8>) -> Result<Vec<u8>, Error> {
            Ok([self.0.as_bytes(), &batch].concat())
        }
    }

    mod raw_export {
        crate::export_transform!(raw super::Echo);
    }

    #[test]
    fn raw_instance() {
        let mut instance = RawInstance::<Echo>::new();
        assert_eq!(instance.transform_ipc(vec![1]).unwrap_err().kind(), "other");
        instance.init("{}").unwrap();
        assert_eq!(instance.transform_ipc(b"x".to_vec()).unwrap(), b"{}x");
    }

    #[test]
    fn instance_runs_like_the_engine() {
        let mut instance = Instance::<AddOne>::new();
        let input = toss::batch(&[toss::Row::auth("a", 1), toss::Row::rev("b", 2)]);
        let bytes = ipc::encode(&input).unwrap();

        let early = instance.transform_ipc(bytes.clone()).unwrap_err();
        assert_eq!(early.kind(), "other");

        let bad = instance.init(r#"{"x": 1}"#).unwrap_err();
        assert_eq!(bad.kind(), "config");
        assert!(instance.transform_ipc(bytes.clone()).is_err());

        instance.init("{}").unwrap();
        let probe = ipc::encode(&ipc::empty_batch(toss::schema())).unwrap();
        let out = ipc::decode(&instance.transform_ipc(probe).unwrap()).unwrap();
        assert_eq!(out.num_rows(), 0);
        assert_eq!(out.schema(), toss::schema());

        let out = ipc::decode(&instance.transform_ipc(bytes).unwrap()).unwrap();
        assert_eq!(columns::int64(&out, "amount").unwrap().values(), &[2, 3]);

        assert_eq!(
            instance
                .transform_ipc(b"garbage".to_vec())
                .unwrap_err()
                .kind(),
            "other"
        );
    }
}
