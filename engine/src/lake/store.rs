//! Object stores (S3 and S3-compatible stores, GCS, Azure Blob) as the lake's sinks and its
//! maintenance reach them: one place that turns `s3://bucket/prefix` and the pipeline file's
//! few store keys into an `object_store` client, with credentials from each provider's standard
//! chain, so the Parquet sink, the Delta sink and `engine lake` connect the same way.

use std::sync::Arc;

use object_store::ObjectStore;

/// What the pipeline file may say of a store beside its URL; the rest (credentials above all)
/// comes from the environment, as each provider's tools read it.
#[derive(Debug, Default)]
pub struct StoreOptions {
    pub endpoint: Option<String>,
    pub allow_http: bool,
    pub region: Option<String>,
}

impl StoreOptions {
    /// The options a lake sink's `endpoint`, `allow_http` and `region` keys give.
    pub fn from_keys(
        endpoint: Option<&crate::env::EnvString>,
        allow_http: bool,
        region: Option<&crate::env::EnvString>,
    ) -> Self {
        StoreOptions {
            endpoint: endpoint.map(|value| value.to_string()),
            allow_http,
            region: region.map(|value| value.to_string()),
        }
    }
}

/// The store `url` names, configured from the environment's standard variables and chains
/// (`AWS_*` and instance metadata; `GOOGLE_*`; `AZURE_*`), then from `options`.
pub fn build_store(
    url: &reqwest::Url,
    options: &StoreOptions,
) -> Result<Arc<dyn ObjectStore>, String> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
    let failed = |err: object_store::Error| err.to_string();
    match url.scheme() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_allow_http(options.allow_http);
            if let Some(endpoint) = &options.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &options.region {
                builder = builder.with_region(region);
            }
            Ok(Arc::new(builder.build().map_err(failed)?))
        }
        "gs" => {
            let builder = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            Ok(Arc::new(builder.build().map_err(failed)?))
        }
        "az" | "abfs" | "abfss" | "azure" => {
            let builder = MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_allow_http(options.allow_http);
            Ok(Arc::new(builder.build().map_err(failed)?))
        }
        other => Err(format!(
            "{other}:// is not an object store the engine knows"
        )),
    }
}

/// Where a lake lives, as the pipeline file names it.
#[derive(Clone)]
pub enum Location {
    /// A folder on a local file system (a plain path or `file:///…`).
    Local(std::path::PathBuf),
    /// A prefix in a bucket: the store (rooted at the bucket) and the URL with the prefix.
    Object {
        store: Arc<dyn ObjectStore>,
        url: reqwest::Url,
    },
}

/// The location `path` names (a folder, `file:///…`, `s3://bucket/prefix`, `gs://…`, `az://…`)
/// with the store keys beside it. `at(key)` names a key in messages (`[[sinks]] delta path`).
pub fn locate(
    path: &crate::env::EnvString,
    options: &StoreOptions,
    at: impl Fn(&str) -> String,
) -> crate::Result<Location> {
    use crate::Error;
    let text = path.as_str();
    let Some((scheme, _)) = text.split_once("://") else {
        if options.endpoint.is_some() || options.allow_http || options.region.is_some() {
            return Err(Error::config(
                at("endpoint"),
                "endpoint, allow_http and region are for an object store path \
                 (path = \"s3://bucket/prefix\"), not a local folder",
            ));
        }
        return Ok(Location::Local(path.to_path()));
    };
    let url = reqwest::Url::parse(text).map_err(|err| {
        Error::config(
            at("path"),
            format!("{:?} is not a URL: {err}", path.as_written()),
        )
    })?;
    if scheme == "file" {
        let folder = url.to_file_path().map_err(|()| {
            Error::config(
                at("path"),
                "a file:// path must be absolute (file:///data/lake)",
            )
        })?;
        return Ok(Location::Local(folder));
    }
    let store = build_store(&url, options).map_err(|err| {
        Error::config(
            at("path"),
            format!(
                "{:?}: {err}; use s3://bucket/prefix, gs://bucket/prefix, \
                 az://container/prefix, file:///folder or a plain folder",
                path.as_written()
            ),
        )
    })?;
    Ok(Location::Object { store, url })
}

/// `url` as people should see it: no user, password or query.
pub fn shown(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.set_query(None);
    shown.to_string().trim_end_matches('/').to_owned()
}
