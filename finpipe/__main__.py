from finpipe.cli import main

main()
