//! COPY OUT read in buffers of whole rows (`Connection::copy_out_buffers`) against a real
//! server: the same bytes tokio-postgres hands over row by row, rows longer than the tap's
//! reads, a row of a gigabyte, several COPYs in one query (one failing), over TLS, and a COPY
//! cancelled halfway.

use bytes::Bytes;
use pgark_pg::{ConnConfig, Connection, CopyOutItem, connect};
use tokio_postgres::error::SqlState;

use super::query_text;

async fn session(db: &pgark_testkit::TestDb) -> Connection {
    let config = ConnConfig::parse_with_env(&db.url(), &|_| None).expect("test conninfo");
    connect(&config).await.expect("connects")
}

/// Every buffer of the rows of each of `statements`, sent as one query and read with buffers of
/// `buffer_size`.
pub async fn batch_buffers(
    connection: &Connection,
    statements: &[&str],
    buffer_size: usize,
) -> Vec<Vec<Bytes>> {
    let statements: Vec<String> = statements.iter().map(|s| (*s).to_owned()).collect();
    let mut copy = connection
        .copy_out_buffers(&statements, buffer_size)
        .await
        .expect("query sent");
    let mut copies = vec![Vec::new()];
    while let Some(item) = copy.next().await {
        match item.expect("every COPY completes") {
            CopyOutItem::Rows(rows) => copies.last_mut().expect("one open").push(rows),
            CopyOutItem::Done => copies.push(Vec::new()),
        }
    }
    assert_eq!(
        copies.pop(),
        Some(Vec::new()),
        "rows after the last COPY's end"
    );
    assert_eq!(copies.len(), statements.len(), "one end per COPY");
    copies
}

/// Every buffer of `sql`'s rows, read with buffers of `buffer_size`.
pub async fn buffers(connection: &Connection, sql: &str, buffer_size: usize) -> Vec<Bytes> {
    let mut copies = batch_buffers(connection, &[sql], buffer_size).await;
    copies.pop().unwrap_or_default()
}

/// The rows of buffers up to `copy`'s error: counted, and the error.
async fn rows_until_error(copy: &mut pgark_pg::CopyOutBuffers) -> (usize, tokio_postgres::Error) {
    let mut rows = 0;
    loop {
        match copy.next().await {
            Some(Ok(CopyOutItem::Rows(buffer))) => {
                rows += buffer.iter().filter(|&&b| b == b'\n').count();
            }
            Some(Ok(CopyOutItem::Done)) => {}
            Some(Err(e)) => return (rows, e),
            None => panic!("the COPY should fail"),
        }
    }
}

/// `sql`'s rows as tokio-postgres hands them over, one by one.
pub async fn rows(connection: &Connection, sql: &str) -> Vec<Bytes> {
    use futures::TryStreamExt;
    connection
        .client()
        .copy_out(sql)
        .await
        .expect("COPY starts")
        .try_collect()
        .await
        .expect("COPY completes")
}

/// Checks that `buffers` hold exactly `rows`, each buffer whole rows within `buffer_size`
/// (unless it is one longer row), cut only where the next row would not fit.
pub fn assert_whole_rows(buffers: &[Bytes], rows: &[Bytes], buffer_size: usize) {
    let mut next = 0;
    for (i, buffer) in buffers.iter().enumerate() {
        let first = next;
        let mut taken = 0;
        while taken < buffer.len() {
            taken += rows[next].len();
            next += 1;
        }
        assert_eq!(taken, buffer.len(), "buffer {i} ends inside a row");
        assert_eq!(
            &buffer[..],
            &rows[first..next].concat()[..],
            "buffer {i} holds other bytes"
        );
        assert!(
            buffer.len() <= buffer_size || next - first == 1,
            "buffer {i} passes its size with several rows"
        );
        if let Some(row) = rows.get(next) {
            assert!(
                buffer.len() + row.len() > buffer_size,
                "buffer {i} was cut before it was full"
            );
        }
    }
    assert_eq!(next, rows.len(), "rows missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn buffers_hold_the_rows_copy_sends_whole_and_in_order() {
    let db = pgark_testkit::server()
        .create_database("copy_buffers")
        .await;
    let connection = session(&db).await;
    // Rows from a few bytes to 600 kB, so that rows straddle every read of the stream (256 kB)
    // and many buffers, and some rows are longer than a buffer.
    connection
        .client()
        .batch_execute(
            "CREATE TABLE t (id int, body text);
             INSERT INTO t SELECT g, repeat(md5(g::text), (g * 7919) % 19000)
             FROM generate_series(1, 400) g;
             INSERT INTO t SELECT g, E'tab\\there\\nnewline \\\\ backslash' FROM generate_series(401, 5000) g",
        )
        .await
        .expect("rows");
    let sql = "COPY t TO STDOUT";
    let expected = rows(&connection, sql).await;
    for buffer_size in [1, 4096, 100_000, 1 << 20] {
        let got = buffers(&connection, sql, buffer_size).await;
        assert_whole_rows(&got, &expected, buffer_size);
    }
    // The session goes on as before.
    assert_eq!(
        query_text(&connection, "SELECT count(*)::text FROM t").await,
        "5000"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_of_no_rows_gives_no_buffers_and_a_failing_one_its_error() {
    let db = pgark_testkit::server().create_database("copy_empty").await;
    let connection = session(&db).await;
    connection
        .client()
        .batch_execute("CREATE TABLE e (id int)")
        .await
        .expect("table");
    assert!(
        buffers(&connection, "COPY e TO STDOUT", 1024)
            .await
            .is_empty()
    );
    // An error before the COPY starts comes back first, and the tap is not left armed.
    let mut copy = connection
        .copy_out_buffers(&["COPY missing TO STDOUT".to_owned()], 1024)
        .await
        .expect("query sent");
    let (rows, err) = rows_until_error(&mut copy).await;
    assert_eq!(
        (rows, err.code()),
        (0, Some(&SqlState::UNDEFINED_TABLE)),
        "{err}"
    );
    assert_eq!(query_text(&connection, "SELECT 'usable'").await, "usable");
    // An error halfway (a division by zero at row 3,000) comes after the rows before it.
    let mut copy = connection
        .copy_out_buffers(
            &[
                "COPY (SELECT g, 1 / (3000 - g) FROM generate_series(1, 5000) g) TO STDOUT"
                    .to_owned(),
            ],
            1024,
        )
        .await
        .expect("COPY starts");
    let (rows, err) = rows_until_error(&mut copy).await;
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "{err}");
    assert!(rows < 3000, "{rows} rows before the failing one");
    assert_eq!(query_text(&connection, "SELECT 'usable'").await, "usable");
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_in_one_query_each_deliver_their_own_rows() {
    let db = pgark_testkit::server().create_database("copy_batch").await;
    let connection = session(&db).await;
    connection
        .client()
        .batch_execute(
            "CREATE TABLE a (id int, body text);
             INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
             CREATE TABLE empty (id int);
             CREATE TABLE long (id int, body text);
             INSERT INTO long SELECT g, repeat(md5(g::text), 10000 * g) FROM generate_series(1, 3) g;
             CREATE TABLE one (id int);
             INSERT INTO one VALUES (7)",
        )
        .await
        .expect("tables");
    let statements = [
        "COPY a TO STDOUT",
        "COPY empty TO STDOUT",
        "COPY long TO STDOUT",
        "COPY one TO STDOUT",
        "COPY empty TO STDOUT",
        "COPY (SELECT id FROM a WHERE id % 1000 = 0) TO STDOUT",
    ];
    for buffer_size in [1, 5000, 1 << 20] {
        let copies = batch_buffers(&connection, &statements, buffer_size).await;
        for (got, sql) in copies.iter().zip(statements) {
            assert_whole_rows(got, &rows(&connection, sql).await, buffer_size);
        }
    }

    // One failing COPY ends the query: the COPYs before it are whole and complete, its rows
    // before the error come, and nothing of the ones after it.
    let statements = [
        "COPY one TO STDOUT",
        "COPY (SELECT g, 1 / (2000 - g) FROM generate_series(1, 5000) g) TO STDOUT",
        "COPY a TO STDOUT",
    ]
    .map(str::to_owned);
    let mut copy = connection
        .copy_out_buffers(&statements, 1024)
        .await
        .expect("query sent");
    assert_eq!(
        copy.next().await.expect("rows").expect("rows"),
        CopyOutItem::Rows(Bytes::from_static(b"7\n"))
    );
    assert_eq!(
        copy.next().await.expect("end").expect("end"),
        CopyOutItem::Done
    );
    let (rows, err) = rows_until_error(&mut copy).await;
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "{err}");
    assert!(rows < 2000, "{rows} rows before the failing one");
    drop(copy);
    assert_eq!(query_text(&connection, "SELECT 'usable'").await, "usable");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_of_a_gigabyte_is_one_buffer() {
    let db = pgark_testkit::server()
        .create_database("copy_gigabyte")
        .await;
    let connection = session(&db).await;
    const LENGTH: usize = 1_000_000_000;
    let got = buffers(
        &connection,
        &format!("COPY (SELECT 1, repeat('x', {LENGTH}) UNION ALL SELECT 2, 'after') TO STDOUT"),
        4 << 20,
    )
    .await;
    assert_eq!(got.len(), 2, "the long row alone, then the short one");
    let long = &got[0];
    assert_eq!(long.len(), LENGTH + 3);
    assert_eq!(&long[..2], b"1\t");
    assert_eq!(long[long.len() - 1], b'\n');
    assert!(long[2..long.len() - 1].iter().all(|&b| b == b'x'));
    assert_eq!(&got[1][..], b"2\tafter\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_copy_ends_with_the_cancel_and_leaves_the_session_usable() {
    let db = pgark_testkit::server().create_database("copy_cancel").await;
    let connection = session(&db).await;
    // Far more rows than are ever read: only the cancel ends this COPY early. (A set-returning
    // function in the select list streams its rows; in FROM it would make them all first.)
    let mut copy = connection
        .copy_out_buffers(
            &[
                "COPY (SELECT generate_series(1, 1000000000), repeat('y', 100)) TO STDOUT"
                    .to_owned(),
            ],
            64 << 10,
        )
        .await
        .expect("COPY starts");
    let Some(Ok(CopyOutItem::Rows(first))) = copy.next().await else {
        panic!("rows first");
    };
    assert!(first.starts_with(b"1\ty"));
    connection
        .cancel()
        .await
        .expect("the cancel request is delivered");
    let mut buffers_after = 0u64;
    let err = loop {
        match copy.next().await {
            Some(Ok(_)) => buffers_after += 1,
            Some(Err(e)) => break e,
            None => panic!("a cancelled COPY must not look complete"),
        }
    };
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    assert!(
        buffers_after < 1_000_000,
        "{buffers_after} buffers after the cancel"
    );
    drop(copy);
    assert_eq!(query_text(&connection, "SELECT 'usable'").await, "usable");
}
