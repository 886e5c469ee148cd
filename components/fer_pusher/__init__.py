"""The Pusher that does not push the same model twice."""
