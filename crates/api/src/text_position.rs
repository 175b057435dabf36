//! Where a byte offset falls in a text, for error messages that name a line and column
//! instead of quoting the line (a config file's line may hold a secret).

/// The 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A parser's `message` about `text`, pointing at byte `offset` (when known) as "line L, column
/// C: message", without quoting the line the way toml's own `Display` does.
pub fn error_at(text: &str, offset: Option<usize>, message: &str) -> String {
    let message = message.trim_end();
    match offset {
        Some(offset) => {
            let (line, column) = line_and_column(text, offset);
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let text = "a = 1\nbé = x\n";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 4), (1, 5));
        assert_eq!(line_and_column(text, 6), (2, 1));
        assert_eq!(line_and_column(text, 11), (2, 5), "é counts as one column");
        assert_eq!(line_and_column(text, 999), (3, 1));
        assert_eq!(
            error_at(text, Some(6), "bad value\n"),
            "line 2, column 1: bad value"
        );
        assert_eq!(error_at(text, None, "bad"), "bad");
    }
}
