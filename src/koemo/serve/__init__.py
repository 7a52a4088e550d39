"""`koemo serve`: a JSON API (FastAPI + uvicorn) and one offline web page over a `koemo export` folder."""
