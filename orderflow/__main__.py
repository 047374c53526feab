from orderflow.cli import main

main()
