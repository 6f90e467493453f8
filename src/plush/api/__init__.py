"""Front end: the HTTP JSON API with its event stream, and the XML-RPC API with the Plush method names."""
