//! MovieLens ratings: `u.data` (tab-separated user, item, rating, unix time,
//! no header) or `ratings.csv` (header `userId,movieId,rating,timestamp`).

use std::path::Path;

/// One rating, with its position in the file (ties in time keep file order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rating {
    pub user: u32,
    pub item: u32,
    /// 1 to 5; half stars of `ratings.csv` round half up.
    pub stars: u8,
    pub at_s: i64,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub ratings: Vec<Rating>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {detail}")]
    Line {
        path: String,
        line: usize,
        detail: String,
    },
    #[error("{0} holds no ratings")]
    Empty(String),
}

impl Dataset {
    /// Reads a file, or the `u.data`/`ratings.csv` inside a folder.
    pub fn load(path: &Path) -> Result<Self, DatasetError> {
        let file = if path.is_dir() {
            ["u.data", "ratings.csv"]
                .iter()
                .map(|name| path.join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| path.join("u.data"))
        } else {
            path.to_path_buf()
        };
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|source| DatasetError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses the text of either format; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, DatasetError> {
        let csv = text.starts_with("userId");
        let mut ratings = Vec::new();
        for (index, raw) in text.lines().enumerate().skip(usize::from(csv)) {
            if raw.trim().is_empty() {
                continue;
            }
            let line = index + 1;
            let error = |detail: String| DatasetError::Line {
                path: path.to_owned(),
                line,
                detail,
            };
            let fields: Vec<&str> = if csv {
                raw.split(',').map(str::trim).collect()
            } else {
                raw.split_whitespace().collect()
            };
            let [user, item, rating, at] = fields[..] else {
                return Err(error(format!(
                    "expected 4 fields (user, item, rating, time), found {}",
                    fields.len()
                )));
            };
            let number = |name: &str, text: &str| {
                text.parse::<u32>()
                    .map_err(|_| error(format!("{name} {text:?} is not a whole number")))
            };
            let rating: f64 = rating
                .parse()
                .ok()
                .filter(|r: &f64| (0.0..=5.0).contains(r))
                .ok_or_else(|| error(format!("rating {rating:?} is not a number from 0 to 5")))?;
            let at_s: i64 = at
                .parse()
                .map_err(|_| error(format!("time {at:?} is not a unix time in seconds")))?;
            ratings.push(Rating {
                user: number("user", user)?,
                item: number("item", item)?,
                stars: rating.round().clamp(1.0, 5.0) as u8,
                at_s,
                line,
            });
        }
        if ratings.is_empty() {
            return Err(DatasetError::Empty(path.to_owned()));
        }
        Ok(Self { ratings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats() {
        let udata = Dataset::parse("1\t10\t4\t100\n2\t11\t5\t99\n", "u.data").unwrap();
        assert_eq!(udata.ratings.len(), 2);
        assert_eq!(udata.ratings[1].stars, 5);
        let csv = Dataset::parse(
            "userId,movieId,rating,timestamp\n1,10,3.5,100\n1,11,0.5,101\n",
            "ratings.csv",
        )
        .unwrap();
        assert_eq!(csv.ratings[0].stars, 4);
        assert_eq!(csv.ratings[1].stars, 1);
        assert_eq!(csv.ratings[1].line, 3);
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = Dataset::parse("1\t10\t4\t100\n1\tx\t4\t100\n", "u.data").unwrap_err();
        assert_eq!(
            error.to_string(),
            "u.data, line 2: item \"x\" is not a whole number"
        );
        assert!(matches!(
            Dataset::parse("", "empty").unwrap_err(),
            DatasetError::Empty(_)
        ));
    }
}
