// Package queue is a durable on-disk FIFO of opaque records: the buffer
// between accepting data and forwarding it, for the proxy and for any sink
// that must not lose data across backend outages or crashes.
//
// Data comes from ingestion: a handler packs many lines into one record and
// calls Append, which returns only after the record is fsync'd, so the
// handler may answer 2xx as soon as Append returns nil. Concurrent Appends
// share fsyncs (group commit): an Append that finds no commit in flight
// writes every pending Append itself, on its own goroutine, fsyncs once
// and releases them all; Appends arriving meanwhile wait, and the first
// of them leads the next group. A handler that builds its record behind
// FrameHeader bytes of room can Seal it itself and call AppendFrames
// (same guarantees): the checksum is then computed where the record was
// just written, and the writer copies nothing; SealCompressed instead
// builds a frame holding the record compressed (S2), and Read gives back
// the original. (The proxy wrote such frames until it began compressing
// its records' lines itself, to forward them as they are; Read still
// decodes them, so an upgraded proxy delivers an old buffer.) Data whose
// sender gets no
// acknowledgement (plaintext TCP lines) can be appended with
// AppendFramesWrittenAsync, which is done once the record is written
// (write(2) returned, so it is in the kernel's page cache; the appender
// writes it itself when no commit is in flight) and leaves the fsync to
// the queue's writer goroutine, within Options.WrittenSync
// (100 ms) or with the next durable Append, whichever is first. Data goes
// to one forwarder, which calls Read for a batch, delivers it, then Ack
// (delivered) or Nack (retry later). Several batches may be in flight;
// they must be acked in order.
//
// On disk, dir holds numbered segment files (<20-digit seq>.seg: an 8-byte
// magic, then records framed as len uint32 LE | crc32c(len, payload)
// uint32 LE | payload, where len's top bit marks a payload stored as an S2
// block by SealCompressed, which Read decodes), a two-slot cursor file
// holding the position of the oldest unacknowledged record, and a lock file (flock) that keeps a second
// process out. Segments are sealed at Options.SegmentBytes; a segment is
// deleted once all its records are acknowledged, or, oldest first, when
// Options.MaxBytes would be exceeded (counted and logged: a backend outage
// longer than the disk budget loses the oldest data, not the newest). On
// Linux the write segment's blocks are allocated when it is created
// (fallocate, keeping its size), and a sealed segment gives back the ones
// it did not use. Records are made durable with fdatasync there, which
// also commits the size and extent changes they need to be read back; so
// that most commits need none, the write segment is kept written with
// zeros up to 1 MiB past its records while its fsyncs cover less than
// 128 KiB each, on ext4 and XFS, which overwrite written blocks in place
// (the zeroed room; no record header is all zeros, so
// readers and Open find the records' end at the first such header).
// Sealing a segment and Close cut the room; Open cuts the room a killed
// process left, without counting it as a torn record.
//
// Guarantees:
//   - Durability: a record is on disk (file, directory entry and all earlier
//     records fsync'd) before its Append returns nil. A record appended
//     with AppendFramesWrittenAsync survives a crash or kill of the
//     process as soon as its callback runs, and a power failure or kernel
//     crash once the next fsync is done (at most Options.WrittenSync
//     later); until then a machine failure can lose it and the records
//     written after it, never records fsync'd before it.
//   - At-least-once: every record whose Append returned nil (whose
//     written callback got nil, barring a machine failure) is returned by
//     Read until a batch containing it is acked, unless it is dropped for
//     room. A crash or Close between delivery and Ack re-delivers the batch
//     after Open, and a torn cursor write falls back to the previous one.
//     Receivers must tolerate duplicates (Wavefront keeps one value per
//     metric, source, tags and timestamp).
//   - Order: records are read in Append order; Appends from one goroutine
//     keep their order.
//   - Crash recovery: Open truncates a torn or damaged tail of the newest
//     segment (only records whose Append had not returned, or written
//     records not yet fsync'd when the machine failed, can be there),
//     logs it and counts it in queue_torn_records_total. A damaged record
//     found later by Read cuts the rest of its segment, likewise logged.
//   - Bounded memory: records are streamed through a 64 KiB read buffer and
//     a recycled batch buffer (about maxBytes); nothing is proportional to
//     the backlog except one small struct per segment file.
//
// The package must not interpret records, retry deliveries or talk to the
// network (that is the forwarder's job), and keeps no package-level
// mutable state but a pool of scratch buffers for compression: each Queue
// owns its files, goroutine and buffers and reports through the Metrics
// it is given.
package queue
