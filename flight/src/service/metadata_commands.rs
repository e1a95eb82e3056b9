//! The answers of metadata commands (catalogs, schemas, tables, keys, `SqlInfo`, XDBC types):
//! a `FlightInfo` whose ticket is the command itself, then one batch from
//! [`crate::metadata`] as a stream.

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError as WireError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::ProstMessageExt;
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::TryStreamExt;
use futures::stream;
use prost::Message;
use tollgate_planner::datafusion::arrow::datatypes::Schema;
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tonic::{Response, Status};

use super::TollgateFlightSql;
use crate::error::internal_status;

/// A `FlightInfo` whose one ticket is the metadata command itself: it names no data,
/// and `DoGet` answers it for whoever presents it.
pub(super) fn metadata_info(
    command: &impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| internal_status("cannot encode a metadata schema", e))?
        .with_descriptor(descriptor)
        .with_ordered(true)
        .with_endpoint(
            FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec())),
        );
    Ok(Response::new(info))
}

/// A stream of one metadata batch.
pub(super) fn batch_stream(
    batch: Result<RecordBatch, WireError>,
) -> Result<Response<<TollgateFlightSql as FlightService>::DoGetStream>, Status> {
    let batch = batch.map_err(|e| internal_status("cannot build a metadata batch", e))?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::iter([Ok::<_, WireError>(batch)]))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(stream)))
}
