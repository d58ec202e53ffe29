//! The parameters of a catalogue listing: `category`, `q`, `page`, `per_page`.

use super::Invalid;
use shopmesh_shared::events::Category;

/// Free text searched for in product names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchText(String);

impl SearchText {
    pub const MAX_CHARS: usize = 200;

    /// `None` for blank text: an empty search box filters nothing.
    pub fn parse(text: &str) -> Result<Option<Self>, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(Invalid(format!(
                "q must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(Invalid("q must not contain control characters".into()));
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `LIKE ... ESCAPE '\'` pattern matching names that contain the text,
    /// compared in lower case, with the text's own `%`, `_` and `\` taken
    /// literally.
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// A 1-based page number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page(u32);

impl Page {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Self(n)),
            _ => Err(Invalid(format!(
                "page must be a whole number from 1 to {}, got {:?}",
                u32::MAX,
                truncate(text)
            ))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Page {
    fn default() -> Self {
        Self(1)
    }
}

/// Items per page, 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PerPage(u32);

impl PerPage {
    pub const MAX: u32 = 100;

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text.trim().parse::<u32>() {
            Ok(n @ 1..=Self::MAX) => Ok(Self(n)),
            _ => Err(Invalid(format!(
                "per_page must be a whole number from 1 to {}, got {:?}",
                Self::MAX,
                truncate(text)
            ))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PerPage {
    fn default() -> Self {
        Self(20)
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

/// A validated listing request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct ListQuery {
    pub category: Option<Category>,
    pub q: Option<SearchText>,
    pub page: Page,
    pub per_page: PerPage,
}

impl ListQuery {
    /// From decoded query-string pairs. Unknown parameters are ignored; a
    /// repeated one is refused (which value was meant is a guess). The error
    /// names the parameter at fault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, (&'static str, Invalid)> {
        let mut query = ListQuery::default();
        let mut seen: Vec<&'static str> = Vec::with_capacity(4);
        for (key, value) in pairs {
            let name: &'static str = match key.as_str() {
                "category" => "category",
                "q" => "q",
                "page" => "page",
                "per_page" => "per_page",
                _ => continue,
            };
            if seen.contains(&name) {
                return Err((name, Invalid(format!("{name} must be given at most once"))));
            }
            seen.push(name);
            let fail = |e: Invalid| (name, e);
            match name {
                "category" if value.trim().is_empty() => {}
                "category" => {
                    query.category =
                        Some(Category::parse(value).map_err(|e| fail(Invalid(e.to_string())))?)
                }
                "q" => query.q = SearchText::parse(value).map_err(fail)?,
                "page" => query.page = Page::parse(value).map_err(fail)?,
                _ => query.per_page = PerPage::parse(value).map_err(fail)?,
            }
        }
        Ok(query)
    }

    /// Rows skipped before this page.
    pub fn offset(&self) -> i64 {
        (i64::from(self.page.get()) - 1) * i64::from(self.per_page.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_page_1_of_20() {
        let query = ListQuery::parse(&[]).unwrap();
        assert_eq!(query.page.get(), 1);
        assert_eq!(query.per_page.get(), 20);
        assert_eq!(query.offset(), 0);
        assert!(query.q.is_none() && query.category.is_none());
    }

    #[test]
    fn each_bad_parameter_is_named() {
        for (key, value) in [
            ("page", "0"),
            ("page", "x"),
            ("page", "-1"),
            ("per_page", "0"),
            ("per_page", "101"),
            ("category", "Books"),
            ("q", &"x".repeat(201)),
        ] {
            let (field, _) = ListQuery::parse(&pairs(&[(key, value)])).unwrap_err();
            assert_eq!(field, key, "{key}={value}");
        }
        let (field, _) = ListQuery::parse(&pairs(&[("page", "1"), ("page", "2")])).unwrap_err();
        assert_eq!(field, "page");
    }

    #[test]
    fn blank_filters_filter_nothing() {
        let query = ListQuery::parse(&pairs(&[("q", "  "), ("category", "")])).unwrap();
        assert!(query.q.is_none() && query.category.is_none());
    }

    #[test]
    fn like_pattern_escapes_wildcards_and_lowers_case() {
        let text = SearchText::parse("50% Off_Now\\").unwrap().unwrap();
        assert_eq!(text.like_pattern(), "%50\\% off\\_now\\\\%");
    }

    #[test]
    fn offset_follows_page_and_size() {
        let query = ListQuery::parse(&pairs(&[("page", "3"), ("per_page", "7")])).unwrap();
        assert_eq!(query.offset(), 14);
    }

    proptest! {
        #[test]
        fn page_accepts_exactly_whole_numbers_from_1(text in prop_oneof![
            any::<u32>().prop_map(|n| n.to_string()),
            "[ ]?[+-]?[0-9]{1,11}[ ]?",
            any::<String>(),
        ]) {
            let expected = text.trim().parse::<u32>().ok().filter(|&n| n >= 1);
            prop_assert_eq!(Page::parse(&text).ok().map(Page::get), expected);
        }

        #[test]
        fn per_page_accepts_exactly_1_to_100(text in prop_oneof![
            (0u32..=102).prop_map(|n| n.to_string()),
            "[ ]?[+-]?[0-9]{1,4}[ ]?",
            any::<String>(),
        ]) {
            let expected = text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=PerPage::MAX).contains(n));
            prop_assert_eq!(PerPage::parse(&text).ok().map(PerPage::get), expected);
        }

        #[test]
        fn search_text_is_none_when_blank_and_refused_when_long_or_control(text in prop_oneof![
            "[ \t]{0,3}[a-zA-Z%_\\\\\u{e9} ]{0,12}[ \t]{0,3}",
            "[a-z]{195,205}",
            "[a-z]{1,5}[\\x00-\\x1f\\x7f][a-z]{0,5}",
            any::<String>(),
        ]) {
            let trimmed = text.trim();
            match SearchText::parse(&text) {
                Ok(None) => prop_assert!(trimmed.is_empty()),
                Ok(Some(search)) => {
                    prop_assert_eq!(search.as_str(), trimmed);
                    prop_assert!(trimmed.chars().count() <= SearchText::MAX_CHARS);
                    prop_assert!(!trimmed.chars().any(char::is_control));
                    // Every wildcard of the text is escaped in the pattern.
                    let pattern = search.like_pattern();
                    let inner = &pattern[1..pattern.len() - 1];
                    let mut chars = inner.chars();
                    while let Some(c) = chars.next() {
                        prop_assert!(!matches!(c, '%' | '_'), "unescaped wildcard in {}", pattern);
                        if c == '\\' {
                            prop_assert!(matches!(chars.next(), Some('%' | '_' | '\\')));
                        }
                    }
                }
                Err(_) => prop_assert!(
                    trimmed.chars().count() > SearchText::MAX_CHARS
                        || trimmed.chars().any(char::is_control)
                ),
            }
        }

        #[test]
        fn offset_is_the_rows_of_the_pages_before(page in 1u32.., per_page in 1u32..=100) {
            let query = ListQuery::parse(&pairs(&[
                ("page", &page.to_string()),
                ("per_page", &per_page.to_string()),
            ]))
            .unwrap();
            prop_assert_eq!(query.offset(), (i64::from(page) - 1) * i64::from(per_page));
        }
    }
}
