"""Who sent an event: Segment's userId / anonymousId pairs resolved to end users in bulk
(resolution), and what identify, group and alias calls change on their profiles (profiles)."""
