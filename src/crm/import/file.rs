//! Reading an import's file (SPEC 13): CSV per RFC 4180 (UTF-8 with or without a BOM, comma
//! or semicolon found from the header) or JSON lines. A first pass reads the whole file in
//! blocks, keeping none of it, and refuses what is not a good file before anything is
//! written: binary data, another encoding, a row too long to hold, a quote never closed,
//! no rows. It also counts the rows (for progress and time left) and hashes the file (so a
//! rerun can go on where an interrupted import stopped). The second pass hands the rows on.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The longest row read; a longer one is refused without being held in memory.
pub const MAX_ROW_BYTES: usize = 1 << 20;
/// The most columns a file may have.
pub const MAX_COLUMNS: usize = 500;

/// Why a file cannot be imported at all; nothing of it has been written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Bad(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

fn bad(m: impl Into<String>) -> FileError {
    FileError::Bad(m.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv { delimiter: u8 },
    JsonLines,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv { delimiter: b';' } => "csv (semicolon)",
            Format::Csv { .. } => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

/// What the first pass learnt.
#[derive(Debug, Clone)]
pub struct Facts {
    pub format: Format,
    /// Bytes to skip at the start (a UTF-8 byte order mark).
    pub skip: u64,
    /// The CSV header's columns; for JSON lines, the keys of the first lines in order.
    pub columns: Vec<String>,
    /// Data rows (the header not counted; blank lines neither).
    pub rows: u64,
    /// SHA-256 of the whole file, hex.
    pub fingerprint: String,
}

/// One data row as read.
#[derive(Debug, Clone)]
pub struct Row {
    /// The line it starts on; the header is line 1.
    pub line: u64,
    pub data: RowData,
}

#[derive(Debug, Clone)]
pub enum RowData {
    Cells(Vec<String>),
    Object(serde_json::Map<String, serde_json::Value>),
    /// The row cannot be read (not JSON); why.
    Unreadable(String),
}

/// The first pass: checks the whole file and learns its shape.
pub fn scan(path: &Path, json_lines: Option<bool>) -> Result<Facts, FileError> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut file, &mut head)?;
    let head = &head[..n];
    if n == 0 {
        return Err(bad("the file is empty: it needs a header line and at least one row"));
    }
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(bad(
            "the file is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\"; in Numbers or Sheets, CSV is UTF-8 already)",
        ));
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(bad("the file is a spreadsheet workbook (.xlsx or .xls), not CSV; save or export it as CSV first"));
    }
    let skip = if head.starts_with(&[0xEF, 0xBB, 0xBF]) { 3 } else { 0 };
    file.seek(SeekFrom::Start(0))?;
    let mut scanner = Scanner::new(skip, json_lines);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        scanner.feed(&buf[..n])?;
    }
    let (format, rows) = scanner.finish()?;
    let fingerprint = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let columns = match format {
        Format::Csv { delimiter } => csv_header(path, skip, delimiter)?,
        Format::JsonLines => json_keys(path, skip)?,
    };
    if rows == 0 {
        return Err(bad(match format {
            Format::Csv { .. } => "the file has a header line and no rows: there is nothing to import",
            Format::JsonLines => "the file has no lines: there is nothing to import",
        }));
    }
    Ok(Facts { format, skip, columns, rows, fingerprint })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn csv_header(path: &Path, skip: u64, delimiter: u8) -> Result<Vec<String>, FileError> {
    let mut rows = csv_reader(path, skip, delimiter)?;
    let mut record = csv::StringRecord::new();
    if !rows.read_record(&mut record).map_err(|e| bad(format!("cannot read the header line: {e}")))? {
        return Err(bad("the file is empty: it needs a header line and at least one row"));
    }
    let columns: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(i, c)| match c.trim() {
            "" => format!("column {}", i + 1),
            name => name.to_owned(),
        })
        .collect();
    if columns.len() > MAX_COLUMNS {
        return Err(bad(format!("the header has {} columns; at most {MAX_COLUMNS} are read", columns.len())));
    }
    Ok(columns)
}

fn csv_reader(path: &Path, skip: u64, delimiter: u8) -> Result<csv::Reader<Lf<File>>, FileError> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(skip))?;
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(Lf::new(file)))
}

/// `\r\n` read as `\n`: the CSV reader numbers the lines of CRLF files one short (it ends
/// a row at the `\r`), and a cell's line breaks read the same from every platform.
struct Lf<R> {
    inner: R,
    buf: Vec<u8>,
    /// The last block ended in `\r`, held back until the next byte is known.
    pending_cr: bool,
}

impl<R: Read> Lf<R> {
    fn new(inner: R) -> Self {
        Lf { inner, buf: vec![0; 1 << 16], pending_cr: false }
    }
}

impl<R: Read> Read for Lf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let room = out.len().min(self.buf.len()).saturating_sub(1);
            if room == 0 {
                return Ok(0);
            }
            let n = self.inner.read(&mut self.buf[..room])?;
            let mut k = 0;
            if n == 0 {
                if std::mem::take(&mut self.pending_cr) {
                    out[0] = b'\r';
                    return Ok(1);
                }
                return Ok(0);
            }
            if std::mem::take(&mut self.pending_cr) && self.buf[0] != b'\n' {
                out[k] = b'\r';
                k += 1;
            }
            for i in 0..n {
                let b = self.buf[i];
                if b == b'\r' {
                    match self.buf.get(i + 1).filter(|_| i + 1 < n) {
                        Some(b'\n') => continue,
                        Some(_) => {}
                        None => {
                            self.pending_cr = true;
                            continue;
                        }
                    }
                }
                out[k] = b;
                k += 1;
            }
            if k > 0 {
                return Ok(k);
            }
        }
    }
}

/// The keys of the first 100 lines, in the order first seen.
fn json_keys(path: &Path, skip: u64) -> Result<Vec<String>, FileError> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(skip))?;
    let mut keys: Vec<String> = Vec::new();
    for line in BufReader::new(file).lines().take(100) {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&line?) {
            for k in m.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    Ok(keys)
}

/// The second pass: the data rows in file order, from the `from`-th on (0: the first).
pub fn rows(
    path: &Path,
    facts: &Facts,
    from: u64,
) -> Result<Box<dyn Iterator<Item = Result<Row, FileError>> + Send>, FileError> {
    match facts.format {
        Format::Csv { delimiter } => {
            let mut reader = csv_reader(path, facts.skip, delimiter)?;
            let mut record = csv::StringRecord::new();
            reader.read_record(&mut record).map_err(|e| bad(format!("cannot read the header line: {e}")))?;
            let mut seen = 0u64;
            let iter = std::iter::from_fn(move || {
                loop {
                    let mut record = csv::StringRecord::new();
                    match reader.read_record(&mut record) {
                        Ok(false) => return None,
                        Err(e) => return Some(Err(bad(format!("cannot read the file: {e}")))),
                        Ok(true) => {
                            seen += 1;
                            if seen <= from {
                                continue;
                            }
                            let line = record.position().map_or(0, |p| p.line());
                            let cells = record.iter().map(str::to_owned).collect();
                            return Some(Ok(Row { line, data: RowData::Cells(cells) }));
                        }
                    }
                }
            });
            Ok(Box::new(iter))
        }
        Format::JsonLines => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(facts.skip))?;
            let lines = BufReader::with_capacity(1 << 16, file).lines();
            let iter = lines
                .enumerate()
                .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .skip(from as usize)
                .map(|(i, line)| {
                    let line_no = i as u64 + 1;
                    let text = line?;
                    let data = match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(serde_json::Value::Object(m)) => RowData::Object(m),
                        Ok(other) => {
                            RowData::Unreadable(format!("the line is JSON but not an object: {}", kind(&other)))
                        }
                        Err(e) => RowData::Unreadable(format!("the line is not JSON: {e}")),
                    };
                    Ok(Row { line: line_no, data })
                });
            Ok(Box::new(iter))
        }
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a cell.
    CellStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted cell: the cell's end, or the first of two quotes.
    QuoteInQuoted,
}

/// The first pass's state machine, fed block by block. It follows the CSV reader's rules
/// (a quote opens a cell only at its start; `""` inside is one quote; blank lines are no
/// rows) so that it counts the same rows.
struct Scanner {
    skip: u64,
    offset: u64,
    json: Option<bool>,
    format: Option<Format>,
    /// The first line's bytes, until its end decides the format.
    first: Vec<u8>,
    state: State,
    line: u64,
    row_line: u64,
    quote_line: u64,
    row_bytes: usize,
    row_has_data: bool,
    rows: u64,
    /// Bytes of an incomplete UTF-8 sequence at the end of the last block.
    carry: Vec<u8>,
    delimiter: u8,
}

impl Scanner {
    fn new(skip: u64, json: Option<bool>) -> Self {
        Scanner {
            skip,
            offset: 0,
            json,
            format: None,
            first: Vec::new(),
            state: State::CellStart,
            line: 1,
            row_line: 1,
            quote_line: 1,
            row_bytes: 0,
            row_has_data: false,
            rows: 0,
            carry: Vec::new(),
            delimiter: b',',
        }
    }

    fn feed(&mut self, block: &[u8]) -> Result<(), FileError> {
        let start = self.skip.saturating_sub(self.offset).min(block.len() as u64) as usize;
        self.offset += block.len() as u64;
        let block = &block[start..];
        if let Some(at) = memchr_nul(block) {
            return Err(bad(format!(
                "the file holds binary data (a NUL byte near line {}), not text; export the data as CSV or JSON lines",
                self.line + block[..at].iter().filter(|b| **b == b'\n').count() as u64
            )));
        }
        self.check_utf8(block)?;
        for &b in block {
            if self.format.is_none() {
                self.first.push(b);
                if b == b'\n' || self.first.len() > MAX_ROW_BYTES {
                    self.decide();
                    let first = std::mem::take(&mut self.first);
                    for &c in &first {
                        self.step(c)?;
                    }
                }
                continue;
            }
            self.step(b)?;
        }
        Ok(())
    }

    /// Decides CSV or JSON lines, and the delimiter, from the first line.
    fn decide(&mut self) {
        let json = self.json.unwrap_or_else(|| self.first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'));
        if json {
            self.format = Some(Format::JsonLines);
            return;
        }
        let (mut commas, mut semis, mut quoted) = (0, 0, false);
        for &b in &self.first {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => commas += 1,
                b';' if !quoted => semis += 1,
                _ => {}
            }
        }
        self.delimiter = if semis > commas { b';' } else { b',' };
        self.format = Some(Format::Csv { delimiter: self.delimiter });
    }

    fn check_utf8(&mut self, block: &[u8]) -> Result<(), FileError> {
        let joined;
        let bytes = if self.carry.is_empty() {
            block
        } else {
            joined = [self.carry.as_slice(), block].concat();
            &joined
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => self.carry.clear(),
            Err(e) if e.error_len().is_none() => {
                let keep = bytes[e.valid_up_to()..].to_vec();
                self.carry = keep;
            }
            Err(e) => {
                let before = &bytes[..e.valid_up_to()];
                let line = self.line + before.iter().filter(|b| **b == b'\n').count() as u64
                    - self.carry.iter().filter(|b| **b == b'\n').count() as u64;
                return Err(bad(format!(
                    "the file is not UTF-8 text (line {line} has the byte 0x{:02X}): it is probably Latin-1 or Windows-1252; save it as UTF-8 (in Excel: \"CSV UTF-8\") and import it again",
                    bytes[e.valid_up_to()]
                )));
            }
        }
        Ok(())
    }

    fn step(&mut self, b: u8) -> Result<(), FileError> {
        if b == b'\n' {
            self.line += 1;
        }
        if self.format == Some(Format::JsonLines) {
            if b == b'\n' {
                if self.row_has_data {
                    self.rows += 1;
                }
                self.row_bytes = 0;
                self.row_has_data = false;
            } else {
                self.grow(b)?;
            }
            return Ok(());
        }
        let newline = b == b'\n' || b == b'\r';
        match (self.state, b) {
            (State::Quoted, b'"') => self.state = State::QuoteInQuoted,
            (State::Quoted, _) => {}
            (State::QuoteInQuoted, b'"') => self.state = State::Quoted,
            (State::CellStart, b'"') => {
                self.state = State::Quoted;
                self.quote_line = self.line;
            }
            (_, _) if newline => {
                self.end_row();
                return Ok(());
            }
            (_, d) if d == self.delimiter => self.state = State::CellStart,
            _ => self.state = State::Unquoted,
        }
        self.grow(b)
    }

    fn grow(&mut self, b: u8) -> Result<(), FileError> {
        if !self.row_has_data {
            self.row_line = self.line;
        }
        self.row_has_data = self.row_has_data || !b.is_ascii_whitespace() || self.format != Some(Format::JsonLines);
        self.row_bytes += 1;
        if self.row_bytes > MAX_ROW_BYTES {
            let hint = if self.state == State::Quoted {
                format!(" (a quote opens a cell on line {} and is never closed?)", self.quote_line)
            } else {
                String::new()
            };
            return Err(bad(format!(
                "the row starting on line {} is longer than {} MiB{hint}; no row may be that long",
                self.row_line,
                MAX_ROW_BYTES >> 20
            )));
        }
        Ok(())
    }

    fn end_row(&mut self) {
        if self.row_has_data {
            self.rows += 1;
        }
        self.state = State::CellStart;
        self.row_bytes = 0;
        self.row_has_data = false;
    }

    /// The format, and the data rows (the header not counted).
    fn finish(mut self) -> Result<(Format, u64), FileError> {
        if !self.carry.is_empty() {
            return Err(bad(format!(
                "the file is not UTF-8 text (it ends inside a character on line {}); save it as UTF-8 and import it again",
                self.line
            )));
        }
        if self.format.is_none() {
            self.decide();
            let first = std::mem::take(&mut self.first);
            for &c in &first {
                self.step(c)?;
            }
        }
        if self.state == State::Quoted {
            return Err(bad(format!(
                "a quote opens a cell on line {} and is never closed; close it (a quote inside a quoted cell is written twice: \"\")",
                self.quote_line
            )));
        }
        if self.row_has_data {
            self.rows += 1;
        }
        let format = self.format.expect("decided above");
        let rows = match format {
            Format::Csv { .. } => self.rows.saturating_sub(1),
            Format::JsonLines => self.rows,
        };
        Ok((format, rows))
    }
}

fn memchr_nul(block: &[u8]) -> Option<usize> {
    block.iter().position(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn facts(bytes: &[u8]) -> Result<Facts, FileError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        scan(f.path(), None)
    }

    fn read_all(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let facts = scan(f.path(), None).unwrap();
        rows(f.path(), &facts, 0)
            .unwrap()
            .map(|r| match r.unwrap().data {
                RowData::Cells(c) => c,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn counts_rows_as_the_reader_reads_them() {
        let text = b"\xEF\xBB\xBFName;Note\r\n\"Ada\";\"two\r\nlines; \"\"quoted\"\"\"\r\n\r\nBob;x\n";
        let f = facts(text).unwrap();
        assert_eq!(f.format, Format::Csv { delimiter: b';' });
        assert_eq!(f.columns, vec!["Name", "Note"]);
        assert_eq!(f.rows, 2);
        let rows = read_all(text);
        assert_eq!(
            rows,
            vec![vec!["Ada".to_owned(), "two\nlines; \"quoted\"".to_owned()], vec!["Bob".into(), "x".into()]]
        );
    }

    #[test]
    fn refuses_bad_files() {
        let msg = |b: &[u8]| facts(b).unwrap_err().to_string();
        assert!(msg(b"").contains("empty"));
        assert!(msg(b"a,b\n").contains("no rows"));
        assert!(msg(b"a,b\n\"x,y\n1,2\n").contains("never closed"));
        assert!(msg(b"a,b\nx\0y,1\n").contains("binary"));
        assert!(msg(b"name\nJos\xE9\n").contains("not UTF-8"));
        assert!(msg(b"PK\x03\x04rest").contains("spreadsheet"));
        let mut long = b"a\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_ROW_BYTES + 10));
        assert!(msg(&long).contains("longer than"));
    }
}

#[cfg(test)]
mod lines {
    use super::*;
    use std::io::Write;

    #[test]
    fn rows_know_their_lines() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a,b\r\n1,2\r\n\"x\r\ny\",3\r\n4,5\r\n").unwrap();
        let facts = scan(f.path(), None).unwrap();
        let lines: Vec<u64> = rows(f.path(), &facts, 0).unwrap().map(|r| r.unwrap().line).collect();
        assert_eq!(lines, vec![2, 3, 5]);
        let lines: Vec<u64> = rows(f.path(), &facts, 1).unwrap().map(|r| r.unwrap().line).collect();
        assert_eq!(lines, vec![3, 5]);
    }
}
