//! Large objects' contents, read and written piece by piece so that no object is ever held
//! whole: a 1 GiB object passes through in pieces of [`PIECE_SIZE`].
//!
//! Reading needs a transaction (a cursor lives in one) and sees that transaction's snapshot, so
//! a dump worker that imported the dump's snapshot reads every object as of that instant.
//! Objects come in OID order and each object's pieces in offset order. The first piece of
//! every object comes through one cursor, a few rows per fetch (so many small objects cost few
//! round trips); the rest of an object larger than one piece is read with one `lo_get` per piece.

use std::collections::VecDeque;

use pgark_archive::large_objects::PIECE_SIZE;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::PgError;

const CURSOR: &str = "pgark_large_objects";

/// One piece of one large object's contents, at most [`PIECE_SIZE`] bytes, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeObjectPiece {
    pub oid: u32,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Reads every large object's contents in the current transaction, piece by piece. At most
/// `fetch_rows` first pieces are held besides the piece returned.
#[derive(Debug)]
pub struct LargeObjectReader<'a> {
    client: &'a Client,
    fetch_rows: i64,
    /// First pieces fetched from the cursor and not yet returned.
    fetched: VecDeque<(u32, Vec<u8>)>,
    /// An object whose last piece read was full: it may go on at this offset.
    continuing: Option<(u32, u64)>,
    cursor_done: bool,
    objects: u64,
}

impl<'a> LargeObjectReader<'a> {
    /// Opens the cursor over every large object. `memory` bounds, in bytes, how much of their
    /// contents the reader holds at once (at least one piece).
    pub async fn open(client: &'a Client, memory: usize) -> Result<Self, PgError> {
        // lo_get is volatile, so the planner evaluates it only for rows actually fetched.
        let sql = format!(
            "DECLARE {CURSOR} NO SCROLL CURSOR FOR \
             SELECT l.oid, pg_catalog.lo_get(l.oid, 0, {PIECE_SIZE}) AS data \
             FROM pg_catalog.pg_largeobject_metadata l ORDER BY l.oid"
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| PgError::query("opening a cursor over the large objects", e))?;
        let fetch_rows = (memory / PIECE_SIZE as usize).clamp(1, 1024);
        Ok(LargeObjectReader {
            client,
            fetch_rows: i64::try_from(fetch_rows).unwrap_or(1),
            fetched: VecDeque::new(),
            continuing: None,
            cursor_done: false,
            objects: 0,
        })
    }

    /// How many objects have been started so far (all of them once `next` returned `None`),
    /// empty ones included.
    pub fn objects(&self) -> u64 {
        self.objects
    }

    /// The next non-empty piece, or `None` when every object has been read (the cursor is then
    /// closed).
    pub async fn next(&mut self) -> Result<Option<LargeObjectPiece>, PgError> {
        loop {
            if let Some((oid, offset)) = self.continuing.take() {
                let data = self.read_piece(oid, offset).await?;
                if data.len() == PIECE_SIZE as usize {
                    self.continuing = Some((oid, offset + u64::from(PIECE_SIZE)));
                }
                if data.is_empty() {
                    continue;
                }
                return Ok(Some(LargeObjectPiece { oid, offset, data }));
            }
            if let Some((oid, data)) = self.fetched.pop_front() {
                self.objects += 1;
                if data.len() == PIECE_SIZE as usize {
                    self.continuing = Some((oid, u64::from(PIECE_SIZE)));
                }
                if data.is_empty() {
                    continue;
                }
                return Ok(Some(LargeObjectPiece {
                    oid,
                    offset: 0,
                    data,
                }));
            }
            if self.cursor_done {
                return Ok(None);
            }
            self.fetch().await?;
        }
    }

    async fn fetch(&mut self) -> Result<(), PgError> {
        let what = "reading large objects";
        let rows = self
            .client
            .query(&format!("FETCH {} FROM {CURSOR}", self.fetch_rows), &[])
            .await
            .map_err(|e| PgError::query(what, e))?;
        if rows.is_empty() {
            self.cursor_done = true;
            self.client
                .batch_execute(&format!("CLOSE {CURSOR}"))
                .await
                .map_err(|e| PgError::query("closing the large objects' cursor", e))?;
        }
        for row in rows {
            let oid: u32 = row.try_get(0).map_err(|e| PgError::query(what, e))?;
            let data: Vec<u8> = row.try_get(1).map_err(|e| PgError::query(what, e))?;
            self.fetched.push_back((oid, data));
        }
        Ok(())
    }

    async fn read_piece(&self, oid: u32, offset: u64) -> Result<Vec<u8>, PgError> {
        let context = || format!("reading large object {oid} at offset {offset}");
        let at = i64::try_from(offset).map_err(|_| PgError::Catalog {
            reason: format!("{}: the offset is out of range", context()),
        })?;
        let length = PIECE_SIZE as i32;
        let params: [&(dyn ToSql + Sync); 3] = [&oid, &at, &length];
        let row = self
            .client
            .query_one("SELECT pg_catalog.lo_get($1, $2, $3)", &params)
            .await
            .map_err(|e| PgError::query(context(), e))?;
        row.try_get(0).map_err(|e| PgError::query(context(), e))
    }
}

/// Writes pieces into existing large objects with `lo_put`, in one statement with binary
/// parameters (never hex text). Pieces may come in any order.
pub async fn write_large_object_pieces(
    client: &Client,
    pieces: &[(u32, u64, &[u8])],
) -> Result<(), PgError> {
    if pieces.is_empty() {
        return Ok(());
    }
    let mut oids = Vec::with_capacity(pieces.len());
    let mut offsets = Vec::with_capacity(pieces.len());
    let mut data = Vec::with_capacity(pieces.len());
    for &(oid, offset, bytes) in pieces {
        let offset = i64::try_from(offset).map_err(|_| PgError::Catalog {
            reason: format!("large object {oid}: offset {offset} is out of range"),
        })?;
        oids.push(oid);
        offsets.push(offset);
        data.push(bytes);
    }
    let params: [&(dyn ToSql + Sync); 3] = [&oids, &offsets, &data];
    client
        .execute(
            "SELECT pg_catalog.lo_put(p.oid, p.off, p.data) \
             FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]), \
                             pg_catalog.unnest($2::pg_catalog.int8[]), \
                             pg_catalog.unnest($3::pg_catalog.bytea[])) AS p(oid, off, data)",
            &params,
        )
        .await
        .map_err(|e| {
            let (oid, offset) = pieces.first().map_or((0, 0), |p| (p.0, p.1));
            PgError::query(
                format!(
                    "writing {} pieces of large objects, the first into large object {oid} \
                     at offset {offset}",
                    pieces.len()
                ),
                e,
            )
        })?;
    Ok(())
}
