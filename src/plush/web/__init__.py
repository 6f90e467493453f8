"""Front end: the web UI (the views of Nebula), served by the API."""
