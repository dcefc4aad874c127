//! Plugin SDK (see issue 3).
