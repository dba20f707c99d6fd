"""Token stores, refreshing and authorising accounts again."""
