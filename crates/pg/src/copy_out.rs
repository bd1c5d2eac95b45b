//! COPY OUT rows in buffers of whole rows, read in large pieces straight off the session's stream.
//!
//! tokio-postgres hands COPY data over as one message per row, each sent from the task that reads
//! the socket to the task that asked, after reading the socket a few kilobytes at a time: per
//! gigabyte, hundreds of thousands of reads and wake-ups and millions of row handles. Here every
//! session's stream passes through a [`Tap`]. The COPYs are sent as one simple query (one or more
//! `COPY ... TO STDOUT` statements: one round trip for all of them, no statement to prepare).
//! Armed for that query, the tap reads the stream in large pieces, copies the CopyData payloads
//! (the rows) into buffers of whole rows, and hands each full buffer over a channel, with a mark
//! where each COPY ends. It keeps each COPY's start and end (CopyOutResponse, CopyDone) to itself;
//! every other message (each statement's CommandComplete, errors, notices, the ReadyForQuery that
//! ends the query) goes on to tokio-postgres unchanged, which therefore sees a query of
//! statements without rows and reports how it ended. TLS sits below the tap, cancellation is the
//! server's ordinary cancel request, and a session whose COPY failed or was cancelled is usable
//! again once the error has been read.
//!
//! What becomes of the rows is the reader's [`RowSink`]'s business, and it happens right there, on
//! the thread that read them, a piece of rows (about [`PIECE_SIZE`]) at a time: a dump compresses
//! them as they arrive. A thread that works on what it read is not asleep when the next bytes
//! come, so the server's sends do not have to wake it, which costs both sides CPU (one wake-up per
//! 8 kB the server sends, on a client that would otherwise keep up and sleep between them).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};
use tokio_util::sync::PollSender;

/// How much the tap asks the stream for at once while it captures rows.
const READ_SIZE: usize = 256 << 10;

/// Full buffers waiting for the reader: one being used while the next fills.
const BUFFERS_IN_FLIGHT: usize = 1;

/// Rows gathered before they are given to the sink: large enough that the sink's work per call
/// dwarfs the call, small enough to still be in cache and to be done well before the server
/// fills the socket's buffer (about 200 kB on a local socket).
const PIECE_SIZE: usize = 128 << 10;

/// What a COPY's rows become as they arrive (compressed chunks, buffers of rows), on the thread
/// that reads them. Items are cut where the sink says its current one is full, between rows.
pub trait RowSink: Send + 'static {
    type Item: Send + 'static;

    /// Bytes of rows the current item can still take.
    fn room(&self) -> usize;

    /// Whether the current item has no rows yet.
    fn is_empty(&self) -> bool;

    /// Takes whole rows: at most [`Self::room`] bytes of them, or one row longer than that into
    /// an empty item.
    fn add(&mut self, rows: &[u8]);

    /// Completes the current item, if it has rows.
    fn finish(&mut self) -> Option<Self::Item>;

    /// The current COPY has completed: completes its last item, if it has rows; what follows is
    /// the next COPY's.
    fn copy_done(&mut self) -> Option<Self::Item> {
        self.finish()
    }
}

/// Buffers of whole rows of at most `size` bytes (a longer row is a buffer of its own).
#[derive(Debug)]
pub struct RowBuffers {
    size: usize,
    buffer: BytesMut,
}

impl RowBuffers {
    pub fn new(size: usize) -> Self {
        RowBuffers {
            size: size.max(1),
            buffer: BytesMut::new(),
        }
    }
}

impl RowSink for RowBuffers {
    type Item = Bytes;

    fn room(&self) -> usize {
        self.size.saturating_sub(self.buffer.len())
    }

    fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    fn add(&mut self, rows: &[u8]) {
        self.buffer.extend_from_slice(rows);
    }

    fn finish(&mut self) -> Option<Bytes> {
        (!self.buffer.is_empty()).then(|| self.buffer.split().freeze())
    }
}

/// The state a session's stream (or two of them: the socket's and, above TLS, the decrypted
/// one) shares with the session: the next capture asked for and whether TLS is in use.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    /// Set when a capture has been asked for and not yet taken up by the stream.
    armed: AtomicBool,
    request: Mutex<Option<Box<dyn Capturing>>>,
    /// Set once TLS is established: then the tap above TLS captures, the socket's passes
    /// ciphertext through.
    above_tls: AtomicBool,
    /// Bytes read while capturing, so a reader can tell a slow server from a stalled one.
    read: Arc<AtomicU64>,
}

impl Tap {
    /// Arms the tap for the next query on the session, whose statements are all COPY OUT: their
    /// rows go to `sink` as they arrive, its items to the returned receiver, each COPY's
    /// followed by [`CopyOutItem::Done`]. Must be called before the query is sent, while the
    /// session is idle.
    pub(crate) fn arm<K: RowSink>(&self, sink: K) -> mpsc::Receiver<CopyOutItem<K::Item>> {
        let (sender, receiver) = mpsc::channel(BUFFERS_IN_FLIGHT);
        let capture = Capture::new(PollSender::new(sender), sink, self.read.clone());
        if let Ok(mut request) = self.request.lock() {
            *request = Some(Box::new(capture));
            self.armed.store(true, Ordering::Release);
        }
        receiver
    }

    /// Takes back a capture the stream never took up (the COPY was not sent).
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
        if let Ok(mut request) = self.request.lock() {
            *request = None;
        }
    }

    pub(crate) fn bytes_read(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    fn take(&self) -> Option<Box<dyn Capturing>> {
        if !self.armed.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.request.lock().ok()?.take()
    }
}

/// Where a [`TapStream`] sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Socket,
    AboveTls,
}

/// A session's stream with the tap in it.
#[derive(Debug)]
pub(crate) struct TapStream<S> {
    inner: S,
    tap: Arc<Tap>,
    level: Level,
    capture: Option<Box<dyn Capturing>>,
}

impl<S> TapStream<S> {
    /// The stream of a session's socket.
    pub(crate) fn socket(inner: S, tap: Arc<Tap>) -> Self {
        TapStream {
            inner,
            tap,
            level: Level::Socket,
            capture: None,
        }
    }

    fn captures_here(&self) -> bool {
        match self.level {
            Level::AboveTls => true,
            Level::Socket => !self.tap.above_tls.load(Ordering::Acquire),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TapStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.capture.is_none() && this.captures_here() {
            this.capture = this.tap.take();
        }
        let Some(capture) = this.capture.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        let polled = capture.poll_read(&mut this.inner, cx, buf);
        if capture.is_finished() {
            this.capture = None;
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TapStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: TlsStream + Unpin> TlsStream for TapStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector that puts a second tap above TLS, where the protocol is readable.
pub(crate) struct TapTls<T> {
    inner: T,
    tap: Arc<Tap>,
}

impl<T> TapTls<T> {
    pub(crate) fn new(inner: T, tap: Arc<Tap>) -> Self {
        TapTls { inner, tap }
    }
}

impl<S, T> TlsConnect<S> for TapTls<T>
where
    T: TlsConnect<S> + Send + 'static,
    T::Future: Send + 'static,
    T::Stream: Unpin,
    S: 'static,
{
    type Stream = TapStream<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let tap = self.tap;
        let connecting = self.inner.connect(stream);
        Box::pin(async move {
            let inner = connecting.await?;
            tap.above_tls.store(true, Ordering::Release);
            Ok(TapStream {
                inner,
                tap,
                level: Level::AboveTls,
                capture: None,
            })
        })
    }
}

/// What a query of COPY OUT statements yields, in order: each COPY's rows, as the sink's items
/// (buffers of whole rows by default), then `Done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutItem<T = Bytes> {
    Rows(T),
    /// The COPY whose rows came last has completed; the next item (if any) is the next one's.
    Done,
}

/// A capture whose sink's items are of some type: what the stream needs of it.
trait Capturing: Send + std::fmt::Debug {
    fn poll_read(
        &mut self,
        inner: &mut (dyn AsyncRead + Unpin),
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>>;

    fn is_finished(&self) -> bool;
}

/// One query's capture: the bytes read and not yet looked at, the rows being gathered, the
/// messages waiting for tokio-postgres.
struct Capture<K: RowSink> {
    /// `None` once the query has ended (or the reader went away and rows are dropped).
    sender: Option<PollSender<CopyOutItem<K::Item>>>,
    sink: K,
    input: BytesMut,
    /// Rows gathered for the sink: at most a piece, or one longer row.
    rows: BytesMut,
    /// Finished items and COPY ends the channel had no room for yet.
    pending: VecDeque<CopyOutItem<K::Item>>,
    /// Payload bytes of the current CopyData message still to come.
    row_left: usize,
    /// Bytes for tokio-postgres: every message but CopyData, CopyOutResponse and CopyDone.
    out: BytesMut,
    /// The query's answer has begun (a COPY started, or an error came): a ReadyForQuery before
    /// that ends a request tokio-postgres sent earlier without waiting for its answer.
    started: bool,
    /// The query's end (ReadyForQuery, or an error, which ends the query) has been seen.
    ended: bool,
    /// The stream ended.
    eof: bool,
    read: Arc<AtomicU64>,
}

impl<K: RowSink> std::fmt::Debug for Capture<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("input", &self.input.len())
            .field("rows", &self.rows.len())
            .field("pending", &self.pending.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<K: RowSink> Capturing for Capture<K> {
    /// Done: the query's end was seen, every buffer handed over, every other byte passed on.
    fn is_finished(&self) -> bool {
        (self.ended || self.eof) && self.pending.is_empty() && self.out.is_empty()
    }

    fn poll_read(
        &mut self,
        inner: &mut (dyn AsyncRead + Unpin),
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            // Buffers first: the reader drains them before it asks tokio-postgres how the query
            // ended, so tokio-postgres may hear of the end only after the last one.
            if !self.pending.is_empty() {
                ready!(self.poll_room(cx));
                if let Some(item) = self.pending.pop_front() {
                    self.hand_over(item);
                }
                continue;
            }
            if self.ended || self.eof {
                // Closing the channel tells the reader the rows are all there.
                self.sender = None;
            }
            if !self.out.is_empty() {
                let n = buf.remaining().min(self.out.len());
                buf.put_slice(&self.out[..n]);
                self.out.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                // The stream's end, for tokio-postgres to report.
                return Poll::Ready(Ok(()));
            }
            if self.ended {
                // Finished; what follows is tokio-postgres's to read.
                return Pin::new(inner).poll_read(cx, buf);
            }
            // Rows are gathered only while the channel has room for them: a full buffer waits
            // in the channel alone, not in the channel and here too, so a session holds at most
            // about one buffer besides the reader's.
            ready!(self.poll_room(cx));
            if self.parse() {
                continue;
            }
            if self.input.capacity() - self.input.len() < READ_SIZE / 4 {
                self.input.reserve(READ_SIZE);
            }
            let read = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut *inner),
                cx,
                &mut self.input
            ))?;
            if read == 0 {
                self.eof = true;
                // Rows of an unfinished message are not rows; the reader hears of the end
                // from tokio-postgres.
                self.rows.clear();
            } else {
                self.read.fetch_add(read as u64, Ordering::Relaxed);
            }
        }
    }
}

impl<K: RowSink> Capture<K> {
    fn new(sender: PollSender<CopyOutItem<K::Item>>, sink: K, read: Arc<AtomicU64>) -> Self {
        Capture {
            sender: Some(sender),
            sink,
            input: BytesMut::new(),
            rows: BytesMut::new(),
            pending: VecDeque::new(),
            row_left: 0,
            out: BytesMut::new(),
            started: false,
            ended: false,
            eof: false,
            read,
        }
    }

    /// Ready once the channel has room for one item (held until [`Self::hand_over`] uses it)
    /// or the reader went away; keeps the waker while the channel is full.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(sender) = self.sender.as_mut()
            && ready!(sender.poll_reserve(cx)).is_err()
        {
            self.sender = None;
        }
        Poll::Ready(())
    }

    /// Sends `item` into the room [`Self::poll_room`] found. A reader that went away gets
    /// nothing more: its rows are dropped as they come.
    fn hand_over(&mut self, item: CopyOutItem<K::Item>) {
        if let Some(sender) = self.sender.as_mut()
            && sender.send_item(item).is_err()
        {
            self.sender = None;
        }
    }

    /// Gives the rows gathered to the sink (none once the reader went away).
    fn feed(&mut self) {
        if !self.rows.is_empty() {
            if self.sender.is_some() {
                self.sink.add(&self.rows);
            }
            self.rows.clear();
        }
    }

    /// Gives the rows gathered to the sink and queues its current item (or, at a COPY's end, its
    /// last), if it has rows.
    fn cut(&mut self, copy_done: bool) {
        self.feed();
        if self.sender.is_none() {
            return;
        }
        let item = if copy_done {
            self.sink.copy_done()
        } else {
            self.sink.finish()
        };
        if let Some(item) = item {
            self.pending.push_back(CopyOutItem::Rows(item));
        }
    }

    /// The sink's current item has no room for a row of `payload` bytes after the rows gathered.
    fn item_full_before(&self, payload: usize) -> bool {
        !(self.sink.is_empty() && self.rows.is_empty())
            && self.rows.len() + payload > self.sink.room()
    }

    /// Moves what it can from the input: row bytes into the rows, other messages out. Returns
    /// whether anything moved (false: more input is needed).
    fn parse(&mut self) -> bool {
        let mut moved = false;
        loop {
            if self.row_left > 0 {
                if self.input.is_empty() {
                    return moved;
                }
                let n = self.row_left.min(self.input.len());
                if self.sender.is_some() {
                    self.rows.extend_from_slice(&self.input[..n]);
                }
                self.input.advance(n);
                self.row_left -= n;
                moved = true;
                if self.row_left == 0 {
                    if self.rows.len() >= self.sink.room() {
                        // The item is full (or is one long row): it goes now.
                        self.cut(false);
                        return true;
                    }
                    if self.rows.len() >= PIECE_SIZE {
                        self.feed();
                    }
                }
                continue;
            }
            let Some(header) = self.input.get(..5) else {
                return moved;
            };
            let tag = header[0];
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if length < 4 {
                // Not the protocol: tokio-postgres gets it all and reports it.
                self.out.extend_from_slice(&self.input.split());
                self.ended = true;
                return true;
            }
            if tag == b'd' {
                let payload = length - 4;
                // An item is cut before it would pass its size: rows stay whole, and a row
                // longer than an item is an item of its own.
                if self.item_full_before(payload) {
                    self.cut(false);
                    return true;
                }
                if self.rows.len() + payload > PIECE_SIZE {
                    self.feed();
                }
                if self.rows.capacity() < payload && self.sender.is_some() {
                    self.rows.reserve(payload.max(PIECE_SIZE));
                }
                self.input.advance(5);
                self.row_left = payload;
                moved = true;
                continue;
            }
            let whole = length + 1;
            if self.input.len() < whole {
                return moved;
            }
            let message = self.input.split_to(whole);
            match tag {
                // A COPY starts: nothing for tokio-postgres, which sent a simple query and
                // expects none.
                b'H' => self.started = true,
                // The end of a request sent before the query and answered only now (a dropped
                // statement's Close): the query has not begun.
                b'Z' if !self.started => self.out.extend_from_slice(&message),
                // A COPY completed: its last rows, then the mark.
                b'c' => {
                    self.cut(true);
                    self.pending.push_back(CopyOutItem::Done);
                }
                // The query's end, or an error (a COPY failed or was cancelled), which ends
                // it: the rows gathered so far are the last, and the rest of the input is
                // tokio-postgres's.
                b'Z' | b'E' => {
                    self.cut(false);
                    self.out.extend_from_slice(&message);
                    self.out.extend_from_slice(&self.input.split());
                    self.ended = true;
                }
                _ => self.out.extend_from_slice(&message),
            }
            return true;
        }
    }
}

/// The rows of running COPY OUTs, as their sink's items: buffers of whole rows by default (see
/// [`crate::Connection::copy_out_buffers`], [`crate::Connection::copy_out_into`]).
pub struct CopyOutBuffers<T = Bytes> {
    receiver: mpsc::Receiver<CopyOutItem<T>>,
    query: Pin<Box<tokio_postgres::SimpleQueryStream>>,
    /// The query's stream has ended (polling it again would report a closed connection).
    query_done: bool,
    read: Arc<AtomicU64>,
}

impl<T> CopyOutBuffers<T> {
    pub(crate) fn new(
        receiver: mpsc::Receiver<CopyOutItem<T>>,
        query: tokio_postgres::SimpleQueryStream,
        read: Arc<AtomicU64>,
    ) -> Self {
        CopyOutBuffers {
            receiver,
            query: Box::pin(query),
            query_done: false,
            read,
        }
    }

    /// The next item (a buffer of whole rows, by default), or the mark that a COPY completed;
    /// `None` once the last has; an error when one failed (or was cancelled), which ends them
    /// all. Dropping this before the end leaves the session streaming rows nobody reads: cancel
    /// the query or drop the connection; after an error, call it no more. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<CopyOutItem<T>, tokio_postgres::Error>> {
        loop {
            // tokio-postgres's side of the query is read alongside, so that its messages (a
            // CommandComplete per COPY) never fill its channel and hold the session's reads up.
            tokio::select! {
                biased;
                item = self.receiver.recv() => match item {
                    Some(item) => return Some(Ok(item)),
                    None => break,
                },
                message = self.query.next(), if !self.query_done => match message {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.query_done = true,
                },
            }
        }
        // Every buffer is in; tokio-postgres says how the query ended.
        while !self.query_done {
            match self.query.next().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Some(Err(e)),
                None => self.query_done = true,
            }
        }
        None
    }

    /// Bytes the session has read during COPYs so far: a reader waiting longer than it likes
    /// for the next buffer can tell a slow server (this grows) from a stalled one.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

impl<T> std::fmt::Debug for CopyOutBuffers<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOutBuffers").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;
    use tokio::io::AsyncReadExt;

    use super::*;

    /// A stream that yields the given pieces, one per read, as a socket may.
    struct Pieces(VecDeque<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let pieces = &mut self.get_mut().0;
            if let Some(piece) = pieces.front_mut() {
                let n = buf.remaining().min(piece.len());
                buf.put_slice(&piece[..n]);
                piece.drain(..n);
                if piece.is_empty() {
                    pieces.pop_front();
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// The answer to a request tokio-postgres sent before the query without waiting for it (a
    /// dropped statement's Close), which the server sends first.
    fn earlier_answer() -> Vec<u8> {
        [message(b'3', b""), message(b'Z', b"I")].concat()
    }

    /// What the server sends for a query of COPYs whose rows are `copies`, the last ending with
    /// `end` ('c' for CopyDone, 'E' for an error), after an earlier request's answer, and what
    /// tokio-postgres must see of it.
    fn query_response(copies: &[Vec<Vec<u8>>], end: u8) -> (Vec<u8>, Vec<u8>) {
        let mut wire = earlier_answer();
        let mut passed = earlier_answer();
        for (n, rows) in copies.iter().enumerate() {
            wire.extend(message(b'H', &[0, 0, 0]));
            for row in rows {
                wire.extend(message(b'd', row));
            }
            if n + 1 < copies.len() || end == b'c' {
                wire.extend(message(b'c', b""));
                let complete = message(b'C', b"COPY 3\0");
                wire.extend(&complete);
                passed.extend(complete);
            }
        }
        let tail = match end {
            b'c' => message(b'Z', b"I"),
            _ => [message(b'E', b"SERROR\0C57014\0\0"), message(b'Z', b"I")].concat(),
        };
        wire.extend(&tail);
        passed.extend(tail);
        (wire, passed)
    }

    /// Passes `wire`, cut at `cuts`, through an armed tap: the bytes tokio-postgres would read,
    /// and the items the reader got.
    fn through_tap(wire: &[u8], cuts: &[usize], buffer_size: usize) -> (Vec<u8>, Vec<CopyOutItem>) {
        let mut pieces = VecDeque::new();
        let mut at = 0;
        for &cut in cuts {
            let cut = cut % (wire.len() + 1);
            if cut > at {
                pieces.push_back(wire[at..cut].to_vec());
                at = cut;
            }
        }
        pieces.push_back(wire[at..].to_vec());
        let tap = Arc::new(Tap::default());
        let mut receiver = tap.arm(RowBuffers::new(buffer_size));
        let stream = TapStream::socket(Pieces(pieces), tap);
        let receiving = async {
            let mut items = Vec::new();
            while let Some(item) = receiver.recv().await {
                items.push(item);
            }
            items
        };
        read_all(stream, receiving)
    }

    /// Reads `stream` to its end while `alongside` runs; what was read and what it returned.
    fn read_all<T>(
        mut stream: TapStream<Pieces>,
        alongside: impl Future<Output = T>,
    ) -> (Vec<u8>, T) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let reading = async {
                let mut passed = Vec::new();
                stream.read_to_end(&mut passed).await.expect("read");
                passed
            };
            tokio::join!(reading, alongside)
        })
    }

    fn rows() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..40),
                prop::collection::vec(any::<u8>(), 1..3000),
            ],
            0..60,
        )
    }

    fn copies() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        prop::collection::vec(
            prop_oneof![
                Just(Vec::new()),
                rows(),
                prop::collection::vec(any::<u8>(), 1..20).prop_map(|r| vec![r])
            ],
            1..6,
        )
    }

    /// Checks that `items` hold each of `copies`' rows in order, in buffers of whole rows within
    /// `buffer_size` (unless a single longer row) cut no earlier than needed, each COPY's followed
    /// by `Done` — the last's only if `completed`.
    fn check_items(
        items: &[CopyOutItem],
        copies: &[Vec<Vec<u8>>],
        buffer_size: usize,
        completed: bool,
    ) -> Result<(), TestCaseError> {
        let mut items = items.iter();
        for (n, rows) in copies.iter().enumerate() {
            let mut next_row = 0;
            while next_row < rows.len() {
                let Some(CopyOutItem::Rows(buffer)) = items.next() else {
                    return Err(TestCaseError::fail(format!("COPY {n}: rows missing")));
                };
                let mut taken = 0;
                let first = next_row;
                while taken < buffer.len() && next_row < rows.len() {
                    prop_assert_eq!(
                        &buffer[taken..taken + rows[next_row].len()],
                        &rows[next_row][..]
                    );
                    taken += rows[next_row].len();
                    next_row += 1;
                }
                prop_assert_eq!(taken, buffer.len(), "a buffer ends inside a row");
                prop_assert!(buffer.len() <= buffer_size || next_row - first == 1);
                // And it was not cut early: the next row would not have fitted.
                if let Some(row) = rows.get(next_row) {
                    prop_assert!(buffer.len() + row.len() > buffer_size);
                }
            }
            if n + 1 < copies.len() || completed {
                prop_assert_eq!(items.next(), Some(&CopyOutItem::Done), "COPY {}'s end", n);
            }
        }
        prop_assert_eq!(items.next(), None);
        Ok(())
    }

    proptest! {
        #[test]
        fn rows_arrive_whole_and_in_order_however_the_stream_is_cut(
            copies in copies(),
            cuts in prop::collection::vec(any::<usize>(), 0..80),
            buffer_size in 1usize..5000,
        ) {
            let (wire, other) = query_response(&copies, b'c');
            let (passed, items) = through_tap(&wire, &cuts, buffer_size);
            prop_assert_eq!(passed, other);
            check_items(&items, &copies, buffer_size, true)?;
        }

        #[test]
        fn a_failed_copy_delivers_the_rows_before_the_error_and_passes_the_error_on(
            copies in copies(),
            cuts in prop::collection::vec(any::<usize>(), 0..80),
            buffer_size in 1usize..5000,
        ) {
            let (wire, other) = query_response(&copies, b'E');
            let (passed, items) = through_tap(&wire, &cuts, buffer_size);
            prop_assert_eq!(passed, other);
            check_items(&items, &copies, buffer_size, false)?;
        }
    }

    #[test]
    fn a_stream_that_ends_inside_a_row_ends_the_capture_without_it() {
        let rows = vec![b"1\tone\n".to_vec(), b"2\ttwo\n".to_vec()];
        let (wire, _) = query_response(&[vec![b"0\n".to_vec()], rows], b'c');
        // Cut inside the second COPY's second row's payload.
        let cut = wire.len() - 6 - 5 - 12 - 3;
        let (passed, items) = through_tap(&wire[..cut], &[], 1 << 20);
        assert_eq!(
            items,
            [
                CopyOutItem::Rows(Bytes::from_static(b"0\n")),
                CopyOutItem::Done
            ],
            "no rows from the unfinished COPY"
        );
        assert_eq!(
            passed,
            [earlier_answer(), message(b'C', b"COPY 3\0")].concat(),
            "only the earlier answer and the first COPY's completion"
        );
    }

    #[test]
    fn an_unarmed_tap_passes_everything_through() {
        let (wire, _) = query_response(&[vec![b"1\n".to_vec()]], b'c');
        let tap = Arc::new(Tap::default());
        let stream = TapStream::socket(Pieces(VecDeque::from([wire.clone()])), tap);
        let (passed, ()) = read_all(stream, async {});
        assert_eq!(passed, wire);
    }
}
