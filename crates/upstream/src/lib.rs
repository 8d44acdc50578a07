//! The upstream token cache (memory, then Redis, then a login): not built yet; see issue "Upstream token cache".
