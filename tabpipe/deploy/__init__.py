"""Releases and rollbacks: build the Bento, smoke-test it served from the store, and move the champion back.

release   build the Bento, serve it from the store on 127.0.0.1 in an empty folder, check known test
          rows against evaluate's answers; a failed check deletes the new Bento (the previous stays)
rollback  the registry's `champion` alias back to `previous`, and the serving manifest with it
"""
