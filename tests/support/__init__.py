"""Code the tests share: servers, harnesses, fakes and request bodies. Test modules import from here, never from each other."""
