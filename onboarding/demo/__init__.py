"""The demo workspace's onboarding side: simulated people (population), their activation funnel
(funnel), the Segment calls they send (journeys), and the services that publish the demo's two
paths (paths.json) and store those calls through ingestion (services). Run by `manage.py seed_demo`."""
