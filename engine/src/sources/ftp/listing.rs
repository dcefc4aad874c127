//! Which of the server's files are Toss files of the selected dates, and the version of each:
//! MLSD's facts where the server has it, else NLST with SIZE and MDTM per file (each optional).
//!
//! Names come from the server and are not trusted: only a name [`TossFileName::parse`] accepts
//! (no `/`, no `..`, no odd characters) is looked at, and it is never used as a local path.

use super::{FtpSource, Step};
use crate::dates::DateSelection;
use crate::remote::retry::AttemptError;
use crate::sources::{TossFileName, toss_file_unit};
use crate::unit::{FileVersion, LoadUnit};
use suppaftp::FtpError;

impl FtpSource {
    pub(super) async fn list_once(&self, dates: &DateSelection) -> Step<Vec<LoadUnit>> {
        let mut session = self.session().await?;
        let mut files = Vec::new();
        let mut listed = false;
        if session.mlsd {
            match self.timed("listing (MLSD)", session.ftp.mlsd(None)).await? {
                Ok(lines) => {
                    for line in lines {
                        let Some(entry) = parse_mlsd_line(&line) else {
                            continue;
                        };
                        if let Some(file) =
                            self.accept(&entry.name, dates, entry.size, entry.modified_ns)
                        {
                            files.push(file);
                        }
                    }
                    listed = true;
                }
                Err(FtpError::UnexpectedResponse(response)) if response.status.code() >= 500 => {
                    tracing::debug!(server = %self.address(), "MLSD refused; listing with NLST");
                }
                Err(err) => {
                    return Err(AttemptError::Retry(format!(
                        "listing `{}` failed: {}",
                        self.dir,
                        self.explain(&err)
                    )));
                }
            }
        }
        if !listed {
            let names = match self.timed("listing (NLST)", session.ftp.nlst(None)).await? {
                Ok(names) => names,
                // An empty folder: some servers answer 450 or 550 "no files found".
                Err(FtpError::UnexpectedResponse(response))
                    if matches!(response.status.code(), 450 | 550) =>
                {
                    Vec::new()
                }
                Err(err) => {
                    return Err(AttemptError::Retry(format!(
                        "listing `{}` failed: {}",
                        self.dir,
                        self.explain(&err)
                    )));
                }
            };
            for name in names {
                let name = name.trim_end_matches(['\r', '\n']);
                if self.accept(name, dates, None, None).is_none() {
                    continue;
                }
                let size = self.size_of(&mut session, name).await?;
                let modified = self.modified_of(&mut session, name).await?;
                files.extend(self.accept(name, dates, size, modified));
            }
        }
        self.keep(session);
        files.sort_by(|a, b| {
            let order = |unit: &LoadUnit| {
                (
                    unit.business_date,
                    unit.label("mid").map(str::to_owned),
                    unit.label("record_kind").map(str::to_owned),
                )
            };
            order(a).cmp(&order(b))
        });
        Ok(files)
    }

    /// A listed name as a Toss file of the selected dates, or `None` for anything else (other
    /// files, folders' names, names with `/`, `..` or odd characters, other dates).
    fn accept(
        &self,
        name: &str,
        dates: &DateSelection,
        size: Option<u64>,
        modified_ns: Option<i64>,
    ) -> Option<LoadUnit> {
        let parsed = TossFileName::parse(name)?;
        if !self.filter.accepts(&parsed, dates) {
            return None;
        }
        let version = FileVersion {
            size,
            modified_ns,
            content_hash: None,
        };
        Some(toss_file_unit(&parsed, name.to_owned(), version))
    }
}

/// One entry of an MLSD listing that is a plain file.
#[derive(Debug, PartialEq, Eq)]
struct MlsdEntry {
    name: String,
    size: Option<u64>,
    modified_ns: Option<i64>,
}

/// Reads `fact=value;fact=value; name` (RFC 3659 §7). Folders, links and malformed lines are
/// `None`; the name is returned exactly as the server wrote it, to be judged by
/// [`TossFileName::parse`].
fn parse_mlsd_line(line: &str) -> Option<MlsdEntry> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (facts, name) = line.split_once(' ')?;
    let mut is_file = false;
    let mut size = None;
    let mut modified_ns = None;
    for fact in facts.split(';') {
        let Some((key, value)) = fact.split_once('=') else {
            continue;
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => is_file = value.eq_ignore_ascii_case("file"),
            "size" => size = value.parse().ok(),
            "modify" => modified_ns = parse_mlsd_time(value),
            _ => {}
        }
    }
    (is_file && !name.is_empty()).then(|| MlsdEntry {
        name: name.to_owned(),
        size,
        modified_ns,
    })
}

/// `YYYYMMDDHHMMSS[.sss]`, UTC, as nanoseconds since the epoch.
fn parse_mlsd_time(value: &str) -> Option<i64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let time = chrono::NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S").ok()?;
    let mut nanos = time.and_utc().timestamp_nanos_opt()?;
    if !fraction.is_empty() {
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = fraction
            .chars()
            .chain("000000000".chars())
            .take(9)
            .collect();
        nanos += digits.parse::<i64>().ok()?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mlsd_lines() {
        assert_eq!(
            parse_mlsd_line("type=file;size=1234;modify=20070706235927; toss_AUTH_20070706.dat\r"),
            Some(MlsdEntry {
                name: "toss_AUTH_20070706.dat".into(),
                size: Some(1234),
                modified_ns: Some(1_183_766_367_000_000_000),
            })
        );
        let fraction = parse_mlsd_line("Type=File;Modify=20070706235927.5;Size=1; a b").unwrap();
        assert_eq!(fraction.name, "a b");
        assert_eq!(fraction.modified_ns, Some(1_183_766_367_500_000_000));
        assert_eq!(
            parse_mlsd_line("type=dir;modify=20070706235927; toss_AUTH_20070706.dat"),
            None
        );
        assert_eq!(parse_mlsd_line("type=cdir; ."), None);
        assert_eq!(parse_mlsd_line("garbage"), None);
    }

    #[test]
    fn listed_names_that_are_not_plain_toss_files_are_ignored() {
        let source = super::super::test_source("p");
        let all = DateSelection::All;
        for hostile in [
            "../toss_AUTH_20070706.dat",
            "../../etc/toss_AUTH_20070706.dat",
            "/etc/toss_AUTH_20070706.dat",
            "sub/toss_AUTH_20070706.dat",
            "toss\\x_AUTH_20070706.dat",
            "toss_AUTH_20070706.dat/",
            " toss_AUTH_20070706.dat",
            "toss_AUTH_20070706.dat ",
            "to ss_AUTH_20070706.dat",
            "toss;rm_AUTH_20070706.dat",
            "toss\0_AUTH_20070706.dat",
            "toss_AUTH_20070706.dat.part",
            "..",
            ".",
            "",
            "shop_AUTH_20070706.dat", // not in mids
        ] {
            assert!(
                source.accept(hostile, &all, Some(1), Some(1)).is_none(),
                "{hostile:?} must be ignored"
            );
            let line = format!("type=file;size=1;modify=20070706235927; {hostile}");
            let accepted = parse_mlsd_line(&line)
                .and_then(|entry| source.accept(&entry.name, &all, entry.size, entry.modified_ns));
            assert!(accepted.is_none(), "{hostile:?} from MLSD must be ignored");
        }
        let file = source
            .accept("toss_REV_20070706.dat", &all, Some(10), Some(5))
            .unwrap();
        assert_eq!(
            (file.name.as_str(), file.origin.as_str()),
            ("toss_REV_20070706.dat", "toss_REV_20070706.dat")
        );
        assert_eq!(file.version.size, Some(10));
    }
}
