//! Keyset pagination's one shape.

/// One page of a keyset-paginated list, and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// The last item's key when more follow: pass it back to get the next page.
    pub next_cursor: Option<C>,
}

impl<T, C> Page<T, C> {
    /// From up to `limit + 1` rows: the extra row only says that more follow.
    pub(crate) fn of(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> C) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more { items.last().map(key) } else { None };
        Self { items, next_cursor }
    }
}
