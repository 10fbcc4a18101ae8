"""API answers are never stored by a cache: they are about one person (a token, their progress,
preferences, inbox, data export; identify answers with the enrollment), and a shared or browser
cache that kept one would hand it to whoever asks next for the same URL. A view that sets its own
Cache-Control keeps it."""

API_PREFIXES = ("/api/", "/v1/")


class NoStoreApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(API_PREFIXES) and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response
