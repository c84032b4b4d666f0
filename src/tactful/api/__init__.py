"""The HTTP shell: one router per domain, the key-scope dependencies, and the middleware. The only
package that knows about requests, headers and keys; everything it does, it asks a domain service."""
