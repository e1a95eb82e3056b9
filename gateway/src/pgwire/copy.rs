//! `COPY (SELECT …) TO STDOUT` and `COPY dataset [(columns)] TO STDOUT` in text, CSV and
//! binary format, streamed batch by batch.
//!
//! psql's `\copy … to …`, psycopg's `copy()`, asyncpg's `copy_from_table` and ADBC all read
//! results this way. Only copies to the client are served; `COPY … FROM` and
//! `COPY … TO 'file'` are refused by the planner's policy like any other write or file access.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use pgwire::api::results::{
    CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, FieldFormat, FieldInfo,
};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use tollgate_planner::QueryStream;
use tollgate_planner::datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption,
};

use super::encode::encode_copy_batch;
use super::errors::{planner_error, user_error};

/// The output format a COPY statement asked for.
#[derive(Debug, Clone)]
pub enum CopyFormat {
    /// PostgreSQL's text format.
    Text(CopyTextOptions),
    /// CSV, with a header line or not.
    Csv {
        /// Delimiter, quoting and NULL spelling.
        options: CopyCsvOptions,
        /// Whether the first line names the columns.
        header: bool,
    },
    /// PGCOPY binary.
    Binary,
}

impl CopyFormat {
    /// Reads the format from a COPY statement's options (modern and pre-9.0 syntax).
    ///
    /// # Errors
    /// 0A000 for options this server does not support, 22023 for unknown formats.
    pub fn from_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> PgWireResult<Self> {
        let mut kind = "text".to_owned();
        let mut delimiter = None;
        let mut null = None;
        let mut header = false;
        let mut quote = None;
        let mut escape = None;
        for option in options {
            match option {
                CopyOption::Format(name) => kind = name.value.to_ascii_lowercase(),
                CopyOption::Delimiter(c) => delimiter = Some(c.to_string()),
                CopyOption::Null(text) => null = Some(text.clone()),
                CopyOption::Header(on) => header = *on,
                CopyOption::Quote(c) => quote = Some(c.to_string()),
                CopyOption::Escape(c) => escape = Some(c.to_string()),
                CopyOption::Encoding(encoding)
                    if encoding.eq_ignore_ascii_case("utf8")
                        || encoding.eq_ignore_ascii_case("utf-8") => {}
                other => {
                    return Err(user_error(
                        "0A000",
                        format!("COPY option {other} is not supported"),
                    ));
                }
            }
        }
        for option in legacy {
            match option {
                CopyLegacyOption::Binary => kind = "binary".to_owned(),
                CopyLegacyOption::Csv(csv) => {
                    kind = "csv".to_owned();
                    for csv_option in csv {
                        match csv_option {
                            CopyLegacyCsvOption::Header => header = true,
                            CopyLegacyCsvOption::Quote(c) => quote = Some(c.to_string()),
                            CopyLegacyCsvOption::Escape(c) => escape = Some(c.to_string()),
                            other => {
                                return Err(user_error(
                                    "0A000",
                                    format!("COPY option {other} is not supported"),
                                ));
                            }
                        }
                    }
                }
                CopyLegacyOption::Delimiter(c) => delimiter = Some(c.to_string()),
                CopyLegacyOption::Null(text) => null = Some(text.clone()),
                CopyLegacyOption::Header => header = true,
                other => {
                    return Err(user_error(
                        "0A000",
                        format!("COPY option {other} is not supported"),
                    ));
                }
            }
        }
        match kind.as_str() {
            "text" => {
                let defaults = CopyTextOptions::default();
                Ok(Self::Text(CopyTextOptions {
                    delimiter: delimiter.map_or(defaults.delimiter, Into::into),
                    null_string: null.map_or(defaults.null_string, Into::into),
                }))
            }
            "csv" => {
                let defaults = CopyCsvOptions::default();
                let quote = quote.map_or(defaults.quote, Into::into);
                Ok(Self::Csv {
                    options: CopyCsvOptions {
                        delimiter: delimiter.map_or(defaults.delimiter, Into::into),
                        escape: escape.map_or_else(|| quote.clone(), Into::into),
                        quote,
                        null_string: null.map_or(defaults.null_string, Into::into),
                        force_quote: Vec::new(),
                    },
                    header,
                })
            }
            "binary" => Ok(Self::Binary),
            other => Err(user_error(
                "22023",
                format!("COPY format \"{other}\" not recognized"),
            )),
        }
    }

    fn field_format(&self) -> FieldFormat {
        match self {
            Self::Binary => FieldFormat::Binary,
            Self::Text(_) | Self::Csv { .. } => FieldFormat::Text,
        }
    }

    /// `fields` with this format's text or binary encoding.
    pub fn fields(&self, fields: Vec<FieldInfo>) -> Vec<FieldInfo> {
        let format = self.field_format();
        fields
            .into_iter()
            .map(|f| {
                FieldInfo::new(
                    f.name().to_owned(),
                    None,
                    None,
                    f.datatype().clone(),
                    format,
                )
                .with_type_modifier(f.type_modifier())
            })
            .collect()
    }
}

/// The CSV header line: column names, quoted where needed.
fn csv_header(fields: &[FieldInfo], options: &CopyCsvOptions) -> CopyData {
    let quote = options.quote.as_str();
    let names: Vec<String> = fields
        .iter()
        .map(|f| {
            let name = f.name();
            if name.contains(options.delimiter.as_str())
                || name.contains(quote)
                || name.contains(['\n', '\r'])
            {
                format!(
                    "{quote}{}{quote}",
                    name.replace(quote, &format!("{}{quote}", options.escape))
                )
            } else {
                name.to_owned()
            }
        })
        .collect();
    CopyData::new(Bytes::from(format!(
        "{}\n",
        names.join(options.delimiter.as_str())
    )))
}

/// Streams `stream` as COPY data in `format`.
pub fn copy_response(
    stream: QueryStream,
    fields: Vec<FieldInfo>,
    format: &CopyFormat,
) -> CopyResponse {
    let fields = Arc::new(format.fields(fields));
    let columns = fields.len();
    let (encoder, header, code) = match format {
        CopyFormat::Text(options) => (
            CopyEncoder::new_text(Arc::clone(&fields), options.clone()),
            None,
            0,
        ),
        CopyFormat::Csv { options, header } => (
            CopyEncoder::new_csv(Arc::clone(&fields), options.clone()),
            header.then(|| csv_header(&fields, options)),
            0,
        ),
        CopyFormat::Binary => (CopyEncoder::new_binary(Arc::clone(&fields)), None, 1),
    };
    let body = copy_rows(stream, fields, encoder);
    CopyResponse::new(code, columns, stream::iter(header.map(Ok)).chain(body))
}

fn copy_rows(
    stream: QueryStream,
    fields: Arc<Vec<FieldInfo>>,
    encoder: CopyEncoder,
) -> impl Stream<Item = PgWireResult<CopyData>> + Send + 'static {
    let wire = stream.wire_bytes();
    stream::unfold((stream, Some(encoder)), move |(mut stream, encoder)| {
        let fields = Arc::clone(&fields);
        let wire = wire.clone();
        async move {
            let encoder = encoder?;
            let rows: Vec<PgWireResult<CopyData>> = match stream.next().await? {
                Err(error) => return Some((vec![Err(planner_error(&error))], (stream, None))),
                Ok(batch) => match encode_copy_batch(encoder, &fields, &batch) {
                    Ok((encoder, rows)) => {
                        // Each CopyData message: type byte, length, payload.
                        wire.add(rows.iter().map(|row| 5 + row.data.len() as u64).sum());
                        return Some((rows.into_iter().map(Ok).collect(), (stream, Some(encoder))));
                    }
                    Err(error) => vec![Err(error)],
                },
            };
            Some((rows, (stream, None)))
        }
    })
    .flat_map(stream::iter)
}
